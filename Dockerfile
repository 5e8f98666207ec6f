# The erp4-backup worker image, used by docker-compose.temporal.yml.
# pg_dump must be at least the server's major version: this image carries PostgreSQL 15's
# client tools (Debian bookworm); for a newer server, install its postgresql-client-NN instead.
FROM node:20.20.2-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY workflows ./workflows
COPY activities ./activities
COPY scripts/bundle-workflows.mjs ./scripts/
# The workflow bundle is built here, once, not by webpack in every worker at start-up.
RUN npx tsc -p tsconfig.build.json && node scripts/bundle-workflows.mjs && npm prune --omit=dev

FROM node:20.20.2-bookworm-slim
# openssh-client: ssh-keygen verifies signed approvals (RESTORE_ALLOWED_SIGNERS_FILE).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 gnupg openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
# A small young generation: stream buffers are collected sooner. Measured (BENCHMARKS.md): worker
# RSS -28 MB at rest and -20 MB at its peak during a backup, at the same speed.
ENV NODE_OPTIONS=--max-semi-space-size=2
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["worker"]
