# The erp4-backup worker image, used by docker-compose.temporal.yml.
FROM node:24.22.3-bookworm-slim AS build
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

FROM node:24.22.3-bookworm-slim
# pg_dump must be at least the server's major version, and the worker picks
# /usr/lib/postgresql/<server major>/bin (else the next newer one): the client tools of
# PostgreSQL 15, 16 and 17 from the PostgreSQL project's apt repository (Debian 12 ships only 15);
# openssh-client: ssh-keygen verifies signed approvals (RESTORE_ALLOWED_SIGNERS_FILE).
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt bookworm-pgdg main" \
      > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 postgresql-client-16 postgresql-client-17 openssh-client \
 && apt-get purge -y curl && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# BACKUP_DIR of the compose file: owned by the image's user, so the named volume created from it is writable.
RUN mkdir -p /var/lib/erp4-backup && chown node:node /var/lib/erp4-backup
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
# The worker's memory settings (src/worker-launch.ts; measured in docs/MEMORY.md): a small young
# generation (stream buffers are collected sooner), two malloc arenas and a fixed mmap threshold
# (freed buffers go back to the system, not kept per thread).
ENV NODE_OPTIONS=--max-semi-space-size=2 MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["worker"]
