import asyncio, os, uuid
from rbm_guard import GuardClient

async def main():
    data = os.environ.get("RBM_GUARD_DATA_DIR", ".data")  # where `npm start` keeps its dev keys
    keys = open(f"{data}/encryption-keys").read()
    async with GuardClient.connect(os.environ.get("TEMPORAL_ADDRESS", "localhost:7233"), keys) as guards:  # closed at the end
        result = await guards.track(agent_id="my-agent", message_id=f"py-{uuid.uuid4()}", phone="+14155550100",
                                    stale_in="10m", fallback_text="Your code is 123456", traffic_type="AUTHENTICATION")
        status = await guards.status(result.workflow_id)
    print(result.workflow_id, status["state"], [t["state"] for t in status["timeline"]])

asyncio.run(main())
