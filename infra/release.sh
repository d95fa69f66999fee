#!/usr/bin/env bash
# One release of SpendSense to a deployment on ECS, as .github/workflows/deploy.yml runs it (and as anyone
# with the deploy role can run it by hand). AWS CLI v2 and jq; every call is one the GitHub deploy role
# (infra/terraform/modules/github_deploy) allows: nothing else.
#
#   NAME=spendsense-staging TAG=<git sha> bash infra/release.sh migrate    # one-off ECS task, exit code 0
#   NAME=spendsense-staging TAG=<git sha> bash infra/release.sh deploy     # every API and worker, then wait
#   NAME=spendsense-staging bash infra/release.sh rollback                 # back to what ran before deploy
#   API_URL=https://... bash infra/release.sh smoke                        # through the API Gateway URL
#
# `deploy` writes what ran before into $STATE (default .release/previous.json); `rollback` reads it. ECS's
# own circuit breaker already rolls a service back whose new tasks never get healthy; `deploy` fails when
# that happened (the service is stable, but on the old revision), and `rollback` also covers a release
# whose tasks are healthy yet fail the smoke test. Migrations are not rolled back: they must stay
# compatible with the previous release (expand now, contract a release later; infra/README.md).
set -euo pipefail

NAME="${NAME:?NAME: the deployment, e.g. spendsense-staging}"
CLUSTER="${CLUSTER:-$NAME-cluster}"
STATE="${STATE:-.release/previous.json}"
# Every service, always (a release is the whole system at one commit); RELEASE_SERVICES only narrows it
# for the release script's own test against the AWS emulator (tests/test_workflows.py).
read -r -a SERVICES <<<"${RELEASE_SERVICES:-auth profile features recommender operator}"
PROCESSES=()
for service in "${SERVICES[@]}"; do PROCESSES+=("$service" "$service-worker"); done

say() { printf '%s  %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

require_tag() {
    # The tag names an image: the git SHA build.yml pushed (ECR tags are immutable).
    [[ "${TAG:-}" =~ ^[0-9a-f]{40}$ ]] || { say "TAG must be a full git SHA, got '${TAG:-}'"; exit 2; }
}

# {"auth": "<task definition ARN>", ...}: what every process runs now (one call: at most 10 services).
running_task_definitions() {
    aws ecs describe-services --cluster "$CLUSTER" --services "${PROCESSES[@]}" \
        --query 'services[].[serviceName, taskDefinition]' --output json | jq 'map({(.[0]): .[1]}) | add'
}

# A new revision of a task definition with its image at $TAG (same repository); prints its ARN.
register_with_tag() {
    local from="$1" spec
    spec=$(aws ecs describe-task-definition --task-definition "$from" --query taskDefinition --output json)
    spec=$(jq --arg tag "$TAG" '
        .containerDefinitions |= map(.image |= (sub("@sha256:[0-9a-f]+$"; "") | sub(":[^:/]+$"; "") + ":" + $tag))
        | del(.taskDefinitionArn, .revision, .status, .requiresAttributes, .compatibilities,
              .registeredAt, .registeredBy, .deregisteredAt)' <<<"$spec")
    aws ecs register-task-definition --cli-input-json "$spec" \
        --query taskDefinition.taskDefinitionArn --output text
}

# Every image of the release is in this deployment's registry (build.yml pushed it): checked before
# anything changes, so that a missing image fails the release at once instead of as tasks that never start.
check_images() {
    local image
    for image in "${SERVICES[@]}" init; do
        aws ecr describe-images --repository-name "$NAME/$image" --image-ids "imageTag=$TAG" \
            --query 'imageDetails[0].imageDigest' --output text >/dev/null ||
            { say "no image $NAME/$image:$TAG in the registry"; exit 1; }
    done
}

migrate() {
    require_tag
    check_images
    local definition network task exit_code
    definition=$(register_with_tag "$NAME-migrate")
    # The migrations run where the services run: the auth API's subnets and security group.
    network=$(aws ecs describe-services --cluster "$CLUSTER" --services auth \
        --query 'services[0].networkConfiguration' --output json)
    say "migrations: $definition"
    task=$(aws ecs run-task --cluster "$CLUSTER" --launch-type FARGATE --task-definition "$definition" \
        --network-configuration "$network" --started-by "release-${TAG:0:12}" \
        --query 'tasks[0].taskArn' --output text)
    aws ecs wait tasks-stopped --cluster "$CLUSTER" --tasks "$task"
    exit_code=$(aws ecs describe-tasks --cluster "$CLUSTER" --tasks "$task" \
        --query 'tasks[0].containers[0].exitCode' --output text)
    if [ "$exit_code" != 0 ]; then
        say "migrations failed (exit code $exit_code): see the log group /ecs/$NAME/migrate"
        exit 1
    fi
    say "migrations done"
}

deploy() {
    require_tag
    check_images
    mkdir -p "$(dirname "$STATE")"
    local process after after_one
    declare -A target
    running_task_definitions >"$STATE" # written before anything changes: rollback needs it
    for process in "${PROCESSES[@]}"; do
        target[$process]=$(register_with_tag "$(jq -r --arg p "$process" '.[$p]' "$STATE")")
        aws ecs update-service --cluster "$CLUSTER" --service "$process" \
            --task-definition "${target[$process]}" --query 'service.serviceName' --output text >/dev/null
        say "$process → ${target[$process]##*/}"
    done
    say "waiting for every service to be stable"
    aws ecs wait services-stable --cluster "$CLUSTER" --services "${PROCESSES[@]}"
    # Stable is not enough: a circuit breaker roll-back ends stable too, on the old revision.
    after=$(running_task_definitions)
    for process in "${PROCESSES[@]}"; do
        after_one=$(jq -r --arg p "$process" '.[$p]' <<<"$after")
        if [ "$after_one" != "${target[$process]}" ]; then
            say "$process runs ${after_one##*/}, not ${target[$process]##*/}: ECS rolled it back"
            exit 1
        fi
    done
    say "every service runs $TAG"
}

rollback() {
    [ -s "$STATE" ] || { say "nothing to roll back to ($STATE is missing)"; exit 1; }
    local process definition
    for process in "${PROCESSES[@]}"; do
        definition=$(jq -r --arg p "$process" '.[$p]' "$STATE")
        aws ecs update-service --cluster "$CLUSTER" --service "$process" --task-definition "$definition" \
            --query 'service.serviceName' --output text >/dev/null
        say "$process ← ${definition##*/}"
    done
    aws ecs wait services-stable --cluster "$CLUSTER" --services "${PROCESSES[@]}"
    say "rolled back"
}

# Through the public edge (CloudFront/API Gateway → VPC link → ALB → each service): the signing keys are
# published, and every service answers an anonymous read of a protected route with 401 and the error shape
# (a 502/503/504 means that service is not serving). Read-only and anonymous: safe against production.
SMOKE_ROUTES=(
    "auth /api/v1/users/smoke-check"
    "profile /api/v1/profile/smoke-check"
    "features /api/v1/profile/smoke-check/persona"
    "recommender /api/v1/recommendations/smoke-check"
    "operator /api/v1/operator/review"
)

probe() { # URL → prints the HTTP status, body in /tmp/smoke-body.json; retried while the edge warms up
    local status attempt
    for attempt in 1 2 3 4 5; do
        status=$(curl -sS -o /tmp/smoke-body.json -w '%{http_code}' --max-time 15 "$1" || echo 000)
        case "$status" in 502 | 503 | 504 | 000) sleep $((attempt * 3)) ;; *) break ;; esac
    done
    echo "$status"
}

smoke() {
    local api="${API_URL:?API_URL: the API base URL}" route service path status
    status=$(probe "$api/api/v1/auth/.well-known/jwks.json")
    [ "$status" = 200 ] && jq -e '.keys | length > 0' /tmp/smoke-body.json >/dev/null ||
        { say "auth: the signing keys are not published (HTTP $status)"; exit 1; }
    for route in "${SMOKE_ROUTES[@]}"; do
        service=${route%% *} path=${route#* }
        status=$(probe "$api$path")
        if [ "$status" != 401 ] || ! jq -e '.error.code != null' /tmp/smoke-body.json >/dev/null 2>&1; then
            say "$service: anonymous GET $path answered HTTP $status, not a 401 with the error shape"
            exit 1
        fi
        say "$service answers"
    done
    say "smoke tests passed against $api"
}

case "${1:-}" in
    migrate | deploy | rollback | smoke) "$1" ;;
    *) echo "usage: $0 migrate|deploy|rollback|smoke" >&2; exit 2 ;;
esac
