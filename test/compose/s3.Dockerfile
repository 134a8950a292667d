# CI stands in for MinIO and mc (no image can be pulled): the project's own embedded S3 server
# (dev/s3-server.ts: s3rver with signature checks) and a one-shot that makes the bucket.
ARG NODE_IMAGE
FROM ${NODE_IMAGE}
ARG NPM_REGISTRY=
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY shared/package.json shared/
COPY upload-service/package.json upload-service/
COPY deploy-service/package.json deploy-service/
COPY cli/package.json cli/
RUN if [ -n "$NPM_REGISTRY" ]; then export npm_config_registry="$NPM_REGISTRY"; fi \
 && npm ci --no-audit --no-fund --ignore-scripts \
 && npm cache clean --force
COPY shared/ shared/
COPY dev/ dev/
COPY test/compose/make-bucket.ts test/compose/
RUN mkdir -p /data
