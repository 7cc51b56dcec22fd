# kubevigil image: compiled JavaScript and production dependencies on Node 24 LTS, as a non-root user,
# friendly to a read-only root filesystem (it writes only to /data, and to /tmp for `kubevigil demo`).
#   docker build -t kubevigil:0.1.0 .
#   docker run -p 8080:8080 -e KUBEVIGIL_INGEST_TOKEN=… -e KUBEVIGIL_API_TOKEN=… -v kv:/data kubevigil:0.1.0
# test/package.test.ts runs the runtime stage's steps (install, copy, start) outside Docker.

FROM node:24-bookworm-slim AS build
WORKDIR /src
# Scripts stay off: the image brings Node, and `prepare` would build before the sources are here.
COPY package.json package-lock.json .npmrc ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY connectors ./connectors
COPY correlator ./correlator
COPY platform ./platform
COPY services ./services
# The browser console (console/): bundled by Vite into dist/console, next to the compiled service.
COPY console ./console
RUN npm run build

FROM node:24-bookworm-slim AS runtime
ENV NODE_ENV=production \
    KUBEVIGIL_HOST=0.0.0.0 \
    KUBEVIGIL_PORT=8080 \
    KUBEVIGIL_DATA_DIR=/data
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
# Production dependencies only; the image's own Node runs kubevigil, so the packaged one goes.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && rm -rf node_modules/node node_modules/.bin/node && npm cache clean --force
# The compiled service and the built console (dist/console): no TypeScript, no bundler.
COPY --from=build /src/dist ./dist
COPY bin ./bin
COPY rules/detections ./rules/detections
COPY rules/correlations ./rules/correlations
RUN mkdir -p /data && chown 10001:10001 /data
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
# Liveness over plain HTTP on the configured port (set KUBEVIGIL_TLS_* and this check needs https).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["node", "-e", "fetch(`http://127.0.0.1:${process.env.KUBEVIGIL_PORT}/healthz`).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "bin/kubevigil.js"]
CMD ["serve"]
