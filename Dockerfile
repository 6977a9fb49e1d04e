# syntax=docker/dockerfile:1
# rbm-guard's worker and webhook adapter (one image, two commands: see docker-compose.yml).
# Debian (glibc), never Alpine: the Temporal SDK's native core is built for glibc.
# Node 24 (LTS) runs the TypeScript sources itself (type stripping; the sources are erasableSyntaxOnly):
# no tsx or other dev tool in the image. The workflow code is bundled once here and the worker loads
# that bundle (RBM_GUARD_WORKFLOW_BUNDLE) instead of running webpack.
ARG NODE_IMAGE=node:24-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the image talks to a real Temporal; it needs none of the dev tools postinstall fetches.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

FROM deps AS workflow-bundle
COPY tsconfig.json ./
COPY workflows ./workflows
COPY worker ./worker
COPY scripts/build-workflow-bundle.ts ./scripts/
RUN npm run build:workflows

# The operators' CLI as one JavaScript file (dist/cli/): `rbm-guard` answers in a fraction of the
# sources' start time. esbuild is a dev tool, so this stage installs them; none reaches the image.
FROM ${NODE_IMAGE} AS cli-build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY bin ./bin
COPY config ./config
COPY workflows ./workflows
COPY activities ./activities
COPY client ./client
COPY scripts/build-cli.js ./scripts/
RUN npm run build:cli

FROM ${NODE_IMAGE}
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json package-lock.json tsconfig.json ./
COPY bin ./bin
COPY config ./config
COPY workflows ./workflows
COPY activities ./activities
COPY client ./client
COPY worker ./worker
COPY service ./service
COPY --from=workflow-bundle /app/dist/workflow-bundle.js ./dist/workflow-bundle.js
COPY --from=cli-build /app/dist/cli ./dist/cli
ENV RBM_GUARD_WORKFLOW_BUNDLE=/app/dist/workflow-bundle.js
# The application files stay root-owned and read-only to the process.
USER node
EXPOSE 8080 8082 9464 9465
# Worker and webhook in one process; the compose file runs them apart (--only worker | webhook).
# `docker run … rbm-guard:local node bin/rbm-guard.js status <id>` runs the operators' CLI.
CMD ["node", "service/main.ts"]
