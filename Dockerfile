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
RUN npx tsc -p tsconfig.build.json && npm prune --omit=dev

FROM node:20.20.2-bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-15 gnupg ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
USER node
ENTRYPOINT ["node", "dist/src/cli.js"]
CMD ["worker"]
