#!/usr/bin/env bash
# Upload the built web app (web/dist, from `make install`) to the deployment's frontend bucket, which
# CloudFront serves (infra/terraform/modules/web). Run after `terraform apply`, with the deployer's AWS
# credentials (they need s3:PutObject/DeleteObject/ListBucket on the bucket and kms:GenerateDataKey on the
# deployment key, which encrypts it):
#
#   bash infra/deploy_web.sh            # bucket and distribution from `terraform output web_deploy`
#   bash infra/deploy_web.sh --prune    # also delete hashed files the current build no longer has
#   WEB_BUCKET=spendsense-frontend-dev WEB_DISTRIBUTION_ID=E123... bash infra/deploy_web.sh
#
# Order matters: the hashed files under assets/ go first and are kept, so a page that is already open
# (with the previous index.html) still finds its chunks; index.html goes last. Prune a release later.
set -euo pipefail
cd "$(dirname "$0")/.."

prune=false
case "${1:-}" in
    "") ;;
    --prune) prune=true ;;
    *) echo "usage: bash infra/deploy_web.sh [--prune]" >&2; exit 2 ;;
esac

dist=web/dist
if [ ! -f "$dist/index.html" ]; then
    echo "deploy_web: $dist/index.html is missing: build the app first (make install)" >&2
    exit 1
fi

if [ -z "${WEB_BUCKET:-}" ] || [ -z "${WEB_DISTRIBUTION_ID:-}" ]; then
    deploy=$(terraform -chdir=infra/terraform output -json web_deploy)
    WEB_BUCKET=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["bucket"])' <<<"$deploy")
    WEB_DISTRIBUTION_ID=$(python3 -c 'import json, sys; print(json.load(sys.stdin)["distribution_id"])' <<<"$deploy")
fi
echo "deploy_web: $dist -> s3://$WEB_BUCKET (CloudFront $WEB_DISTRIBUTION_ID)"

# 1. Hashed build files: never change under their name, cached for a year (CloudFront sends the same
#    Cache-Control whatever the object says; this is for anyone reading the bucket directly).
if [ -d "$dist/assets" ]; then
    aws s3 sync "$dist/assets" "s3://$WEB_BUCKET/assets" --only-show-errors \
        --cache-control "public, max-age=31536000, immutable"
fi

# 2. Everything else (index.html, favicon, ...): always revalidated. Files gone from the build are deleted
#    here, outside assets/ (an --exclude also keeps --delete away from what it excludes).
aws s3 sync "$dist" "s3://$WEB_BUCKET" --only-show-errors --delete --exclude "assets/*" \
    --cache-control "no-cache"

# 3. Optionally, hashed files of older builds (the bucket keeps their versions for 30 days).
if [ "$prune" = true ] && [ -d "$dist/assets" ]; then
    aws s3 sync "$dist/assets" "s3://$WEB_BUCKET/assets" --only-show-errors --delete \
        --cache-control "public, max-age=31536000, immutable"
fi

# 4. CloudFront caches only /assets/* (new names every build); index.html and the rest are never cached at
#    the edge, so the new build is live already. The invalidation only makes sure of it (one path, free).
invalidation=$(aws cloudfront create-invalidation --distribution-id "$WEB_DISTRIBUTION_ID" \
    --paths "/*" --query Invalidation.Id --output text)
echo "deploy_web: done (invalidation $invalidation; aws cloudfront wait invalidation-completed" \
    "--distribution-id $WEB_DISTRIBUTION_ID --id $invalidation)"
