# flowfi-events: docker build -t flowfi-events:$(node -p "require('./package.json').version") .
# One base for every stage, pinned by version (Node 24 LTS, Debian slim).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

# Compiles the TypeScript and bundles the console page, with the dev dependencies.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json *.ts ./
COPY plugins plugins
COPY routes routes
COPY services services
COPY scripts scripts
# npm run build compiles the client's entry points too (client/tsconfig.build.json), and bundles
# the console page (esbuild) into dist/console from its sources and the client.
COPY console console
COPY client client
RUN npm run build

# The production dependencies alone, from the same lockfile.
FROM ${NODE_IMAGE} AS production-dependencies
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

FROM ${NODE_IMAGE}
# tini as PID 1: it forwards SIGTERM to Node (whose handler drains) and reaps orphans.
RUN apt-get update \
  && apt-get install -y --no-install-recommends tini \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and not writable by the process: the root filesystem may be mounted read-only.
COPY --from=production-dependencies /app/node_modules node_modules
COPY --from=build /app/dist dist
# The image's node user, by number, so that Kubernetes' runAsNonRoot can check it.
USER 1000:1000
# The service and its Prometheus listener (PORT, METRICS_PORT).
EXPOSE 3001 9091
ENTRYPOINT ["/usr/bin/tini", "--"]
# Node itself, not npm start (which compiles first and keeps the signal from Node), with npm start's flags.
CMD ["node", "--max-semi-space-size=8", "dist/server.js"]
