package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"time"

	rbmguard "github.com/rbm-guard/rbm-guard/client/go"
)

func main() {
	keys, err := os.ReadFile(cmp.Or(os.Getenv("RBM_GUARD_DATA_DIR"), ".data") + "/encryption-keys") // `npm start`'s dev key
	if err != nil {
		panic(err)
	}
	c, err := rbmguard.Dial(cmp.Or(os.Getenv("TEMPORAL_ADDRESS"), "localhost:7233"), "default", string(keys))
	if err != nil {
		panic(err)
	}
	defer c.Close()
	guards, ctx := rbmguard.NewGuardClient(c, ""), context.Background()
	res, err := guards.Track(ctx, rbmguard.TrackRequest{AgentID: "my-agent", MessageID: fmt.Sprintf("go-%d", time.Now().UnixNano()),
		Phone: "+14155550100", StaleIn: "10m", FallbackText: "Your code is 123456", TrafficType: "AUTHENTICATION"})
	if err != nil {
		panic(err) // a *rbmguard.ValidationError names each bad field
	}
	status, err := guards.Status(ctx, res.WorkflowID)
	if err != nil {
		panic(err)
	}
	fmt.Println(res.WorkflowID, status.State, len(status.Timeline))
}
