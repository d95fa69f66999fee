locals {
  # The deployment name: "dev", or "dev-chuong" with an owner_id. It is SPENDSENSE_ENV too, because the
  # services derive their topic, queue and bucket names from it at run time (messaging/topology.py):
  # Terraform has to create exactly those names.
  deployment = var.owner_id == "" ? var.env : "${var.env}-${var.owner_id}"
  name       = "spendsense-${local.deployment}"
  # For the few AWS names capped at 32 characters (ALB).
  short_name = "ss-${local.deployment}"

  tags = merge(
    {
      Project     = "spendsense"
      Environment = var.env
      ManagedBy   = "terraform"
    },
    var.owner_id == "" ? {} : { Owner = var.owner_id },
  )

  # What the code declares (generated/main.tf.json, written by infra/generate.py).
  services = module.declaration.services # API per service: auth, profile, features, recommender, operator
  workers  = module.declaration.workers  # worker per service: auth-worker, ...
  routes   = module.declaration.routes   # "METHOD /path" => service, the local gateway's table
  # The event bus with this deployment's names put in for the placeholder: the same names
  # build_topology(SPENDSENSE_ENV) computes inside the services.
  bus = jsondecode(replace(jsonencode(module.declaration.bus), module.declaration.placeholder, local.deployment))

  # Values of the SPENDSENSE_* variables the declaration lists per process. Indexed without a default on
  # purpose: a setting the code starts to need and nobody gave a value here fails `terraform plan`.
  plain_env = {
    SPENDSENSE_ENV         = local.deployment
    SPENDSENSE_AWS_REGION  = var.region
    SPENDSENSE_JWKS_URL    = module.load_balancer.jwks_url
    SPENDSENSE_LOG_JSON    = "true"
    SPENDSENSE_METRICS_EMF = "true" # the dashboards read the services' embedded-metric-format records
    # auth: behind API Gateway and the ALB, the client's address is X-Forwarded-For's first entry
    SPENDSENSE_TRUST_PROXY = "true"
    # auth: OAuth providers send the browser back to the public API
    SPENDSENSE_OAUTH_REDIRECT_BASE_URL = module.api.endpoint
    # auth: the bootstrap admin ("" = none; its password is the "admin-password" secret)
    SPENDSENSE_ADMIN_EMAIL = var.admin_email
    # profile worker: APNs identifiers of the iOS platform application ("" = not used)
    SPENDSENSE_PUSH_APNS_PRINCIPAL = var.push.apns_principal
    SPENDSENSE_PUSH_APNS_TEAM_ID   = var.push.apns_team_id
    SPENDSENSE_PUSH_APNS_BUNDLE_ID = var.push.apns_bundle_id
    SPENDSENSE_PUSH_APNS_SANDBOX   = tostring(var.push.apns_sandbox)
  }
  secret_env = {
    SPENDSENSE_DATABASE_URL    = module.data.database_url_secret_arn
    SPENDSENSE_REDIS_URL       = module.data.redis_url_secret_arn
    SPENDSENSE_JWT_PRIVATE_KEY = module.secrets.secret_arns["jwt-private-key"]
    SPENDSENSE_ADMIN_PASSWORD  = module.secrets.secret_arns["admin-password"]
    SPENDSENSE_OPENAI_API_KEY  = module.secrets.secret_arns["openai-api-key"] # once RecommenderSettings reads it
    # profile worker: APNs .p8 key (or certificate private key) and FCM service account JSON
    SPENDSENSE_PUSH_APNS_CREDENTIAL = module.secrets.secret_arns["push-apns-credential"]
    SPENDSENSE_PUSH_FCM_CREDENTIAL  = module.secrets.secret_arns["push-fcm-credential"]
  }

  # Mobile push (SNS platform applications and their endpoints) is the profile service's: its worker
  # finds or creates the applications, creates endpoints and publishes; its API deletes endpoints when a
  # user is erased. The applications are named as adapters/push.py names them,
  # spendsense-{SPENDSENSE_ENV}-push-{ios,android}; they are the app's to create (with the credentials
  # from Secrets Manager), not Terraform's. iOS on both APNs platforms: endpoints stored while
  # push.apns_sandbox had its other value stay reachable (to delete on erasure, or to publish to).
  push_service = "profile"
  sns_arn      = "arn:${data.aws_partition.current.partition}:sns:${var.region}:${data.aws_caller_identity.current.account_id}"
  push_application_arns = [
    "${local.sns_arn}:app/APNS/${local.name}-push-ios",
    "${local.sns_arn}:app/APNS_SANDBOX/${local.name}-push-ios",
    "${local.sns_arn}:app/GCM/${local.name}-push-android",
  ]

  # Which buckets each service's processes may use (none unless listed). Uploads land in "data" (profile
  # writes, features reads); features writes the claim-checked analysis details there, the recommender
  # reads them; evaluation reports and decision-trace exports go to "reports".
  bucket_access = {
    profile     = { read = ["data"], write = ["data"] }
    features    = { read = ["data"], write = ["data"] }
    recommender = { read = ["data", "reports"], write = ["reports"] }
    operator    = { read = ["reports"], write = ["reports"] }
  }

  # Container-level process list (API + worker) that the dashboards and alarms cover.
  processes = merge(
    { for name, api in local.services : name => { service = name, kind = "api" } },
    { for name, worker in local.workers : name => { service = worker.service, kind = "worker" } },
  )
}
