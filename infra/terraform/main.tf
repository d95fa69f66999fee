# SpendSense on AWS. Requests: CloudFront (the web app from S3, /api/* to API Gateway) -> API Gateway
# (HTTP API) -> VPC link -> internal ALB -> one ECS Fargate service per SpendSense service. Events: each
# service's worker relays its outbox to its own SNS topic and consumes its own SQS queue (with a DLQ).
# State: RDS PostgreSQL (a schema per service), ElastiCache Redis, S3. The service list, event bus and
# routes come from ./generated (infra/generate.py).

provider "aws" {
  region = var.region

  default_tags {
    tags = local.tags
  }
}

# The region backups and the data bucket are copied to (var.replication); the deployment's own region when
# there is no replication (the provider is then unused).
provider "aws" {
  alias  = "replica"
  region = var.replication == null ? var.region : var.replication.region

  default_tags {
    tags = local.tags
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

# What the code declares: services, workers, their settings, the event bus and the route table.
module "declaration" {
  source = "./generated"
}

# One customer-managed key for everything this deployment stores (logs, queues, topics, database, cache,
# buckets, secrets, images): one place to audit and to revoke.
module "encryption" {
  source = "./modules/encryption"

  name       = local.name
  region     = var.region
  account_id = data.aws_caller_identity.current.account_id
  # CloudFront reads the web app's objects, which this key encrypts (bucket name from the declaration).
  frontend_bucket_arn = "arn:${data.aws_partition.current.partition}:s3:::${local.bus.buckets["frontend"]}"
}

module "network" {
  source = "./modules/network"

  name                  = local.name
  region                = var.region
  availability_zones    = var.availability_zones
  vpc_cidr              = var.vpc_cidr
  public_subnet_cidrs   = var.public_subnet_cidrs
  private_subnet_cidrs  = var.private_subnet_cidrs
  database_subnet_cidrs = var.database_subnet_cidrs
  single_nat_gateway    = var.single_nat_gateway
  service_port          = 8000 # every API container listens here (generated services[*].port)
  kms_key_arn           = module.encryption.key_arn
  log_retention_days    = var.log_retention_days
}

module "data" {
  source = "./modules/data"
  providers = {
    aws         = aws
    aws.replica = aws.replica
  }

  name                = local.name
  buckets             = local.bus.buckets # bucket names also come from the declaration
  database_subnet_ids = module.network.database_subnet_ids
  database_sg_id      = module.network.database_sg_id
  redis_sg_id         = module.network.redis_sg_id
  database            = var.database
  redis               = var.redis
  kms_key_arn         = module.encryption.key_arn
  log_retention_days  = var.log_retention_days
  replication         = var.replication
}

module "secrets" {
  source = "./modules/secrets"

  name        = local.name
  kms_key_arn = module.encryption.key_arn
  # Values are put in by hand (infra/README.md, "Secrets"): Terraform never sees them.
  secrets = {
    "jwt-private-key" = "RS256 private key (PEM) the auth service signs tokens with."
    "openai-api-key"  = "OpenAI API key for the recommender's rationale text (deterministic fallback without it)."
    "admin-password"  = "Password of the bootstrap admin (SPENDSENSE_ADMIN_EMAIL); at least 12 characters, mixed."
    # Mobile push (profile worker). A blank value (" ") means none: that platform's application must
    # then exist already, else its devices get no push (logged).
    "push-apns-credential" = "APNs PlatformCredential: the .p8 signing key (token auth) or the certificate's private key."
    "push-fcm-credential"  = "FCM PlatformCredential (SNS platform GCM): the Firebase service account JSON."
  }
}

# Topics, queues, DLQs and subscriptions (with filter policies), exactly as declared.
module "bus" {
  source = "./modules/bus"

  topics        = local.bus.topics
  queues        = local.bus.queues
  subscriptions = local.bus.subscriptions
  kms_key_arn   = module.encryption.key_arn
}

# One repository per service image (API and worker share it) and one for the migrations job.
module "registry" {
  source = "./modules/registry"

  name         = local.name
  repositories = concat(keys(local.services), ["init"])
  kms_key_arn  = module.encryption.key_arn
}

module "cluster" {
  source = "./modules/cluster"

  name = local.name
}

module "load_balancer" {
  source = "./modules/load_balancer"

  name                = local.short_name
  subnet_ids          = module.network.private_subnet_ids
  security_group_id   = module.network.alb_sg_id
  access_logs_bucket  = module.data.alb_logs_bucket
  deletion_protection = var.database.deletion_protection
}

# The five APIs, behind the ALB (API Gateway picks the service; see modules/api).
module "api_service" {
  source   = "./modules/ecs_service"
  for_each = local.services

  name_prefix    = local.name
  name           = each.key
  service        = each.key
  region         = var.region
  cluster_arn    = module.cluster.arn
  image          = "${module.registry.repository_urls[each.key]}:${var.image_tag}"
  repository_arn = module.registry.repository_arns[each.key]
  command        = each.value.command
  port           = each.value.port
  health_path    = each.value.health_path
  cpu            = var.api_task_size.cpu
  memory         = var.api_task_size.memory
  environment    = { for n in each.value.environment : n => local.plain_env[n] }
  secrets        = { for n in each.value.secrets : n => local.secret_env[n] }

  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.network.tasks_sg_id]
  kms_key_arn        = module.encryption.key_arn
  log_retention_days = var.log_retention_days

  http = {
    vpc_id        = module.network.vpc_id
    listener_arn  = module.load_balancer.listener_arn
    header_name   = module.load_balancer.service_header
    priority      = 100 + index(keys(local.services), each.key) * 10
    path_patterns = each.key == "auth" ? [module.load_balancer.jwks_path_pattern] : []
  }

  # The API only checks at /ready that its queue and topic exist; publishing and consuming is the worker's.
  bus_access = {
    publish_topic_arns  = []
    consume_queue       = null
    lookup_queue_arns   = contains(keys(local.bus.queues), each.key) ? [module.bus.queues[each.key].arn] : []
    list_topics         = true
    kms_key_arn         = module.encryption.key_arn
    scale_on_queue_name = null
  }
  bucket_arns = {
    read  = [for kind in try(local.bucket_access[each.key].read, []) : module.data.bucket_arns[kind]]
    write = [for kind in try(local.bucket_access[each.key].write, []) : module.data.bucket_arns[kind]]
  }
  send_sms = each.key == "auth" # phone sign-in codes
  # The profile API deletes a user's push endpoints when it erases the user; it sends nothing.
  push_access = {
    application_arns = each.key == local.push_service ? local.push_application_arns : []
    send             = false
    delete_endpoints = each.key == local.push_service
  }
  autoscaling = var.autoscaling
}

# The five workers: outbox relay to the service's own topic, consumer of the service's own queue.
module "worker_service" {
  source   = "./modules/ecs_service"
  for_each = local.workers

  name_prefix    = local.name
  name           = each.key
  service        = each.value.service
  region         = var.region
  cluster_arn    = module.cluster.arn
  image          = "${module.registry.repository_urls[each.value.service]}:${var.image_tag}"
  repository_arn = module.registry.repository_arns[each.value.service]
  command        = each.value.command
  port           = each.value.port
  health_path    = each.value.health_path
  cpu            = var.worker_task_size.cpu
  memory         = var.worker_task_size.memory
  environment    = { for n in each.value.environment : n => merge(local.plain_env, { SPENDSENSE_WORKER_METRICS_PORT = tostring(each.value.port) })[n] }
  secrets        = { for n in each.value.secrets : n => local.secret_env[n] }

  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.network.tasks_sg_id]
  kms_key_arn        = module.encryption.key_arn
  log_retention_days = var.log_retention_days

  http = null # no inbound traffic; the health check probes the metrics port inside the task

  # Least privilege: publish to its own service's topic only, read its own service's queue only.
  bus_access = {
    publish_topic_arns  = contains(keys(local.bus.topics), each.value.service) ? [module.bus.topic_arns[each.value.service]] : []
    consume_queue       = contains(keys(local.bus.queues), each.value.service) ? module.bus.queues[each.value.service] : null
    lookup_queue_arns   = []
    list_topics         = false
    kms_key_arn         = module.encryption.key_arn
    scale_on_queue_name = contains(keys(local.bus.queues), each.value.service) ? local.bus.queues[each.value.service].name : null
  }
  bucket_arns = {
    read  = [for kind in try(local.bucket_access[each.value.service].read, []) : module.data.bucket_arns[kind]]
    write = [for kind in try(local.bucket_access[each.value.service].write, []) : module.data.bucket_arns[kind]]
  }
  # The profile worker sends the pushes: its two platform applications and their endpoints only.
  push_access = {
    application_arns = each.value.service == local.push_service ? local.push_application_arns : []
    send             = each.value.service == local.push_service
    delete_endpoints = false
  }
  autoscaling = var.autoscaling
}

# Migrations: a task definition only, run once per release (`aws ecs run-task`, see infra/README.md).
module "migrate_task" {
  source = "./modules/ecs_service"

  name_prefix    = local.name
  name           = "migrate"
  service        = "init"
  region         = var.region
  cluster_arn    = module.cluster.arn
  create_service = false
  image          = "${module.registry.repository_urls["init"]}:${var.image_tag}"
  repository_arn = module.registry.repository_arns["init"]
  command        = ["spendsense", "migrate"]
  port           = 0
  health_path    = ""
  cpu            = 256
  memory         = 512
  environment    = { SPENDSENSE_ENV = local.deployment }
  secrets        = { SPENDSENSE_DATABASE_URL = local.secret_env["SPENDSENSE_DATABASE_URL"] }

  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.network.tasks_sg_id]
  kms_key_arn        = module.encryption.key_arn
  log_retention_days = var.log_retention_days

  http       = null
  bus_access = {
    publish_topic_arns  = []
    consume_queue       = null
    lookup_queue_arns   = []
    list_topics         = false
    kms_key_arn         = module.encryption.key_arn
    scale_on_queue_name = null
  }
  bucket_arns = { read = [], write = [] }
  autoscaling = var.autoscaling
}

# The public edge: one route per entry of the local gateway's route table.
module "api" {
  source = "./modules/api"

  name               = local.name
  routes             = local.routes
  services           = keys(local.services)
  listener_arn       = module.load_balancer.listener_arn
  service_header     = module.load_balancer.service_header
  subnet_ids         = module.network.private_subnet_ids
  security_group_id  = module.network.vpc_link_sg_id
  cors_allow_origins = var.cors_allow_origins
  throttle           = var.api_throttle
  kms_key_arn        = module.encryption.key_arn
  log_retention_days = var.log_retention_days
}

# The web app (web/dist) from the frontend bucket through CloudFront, and /api/* on the same domain to
# API Gateway: the app calls /api/v1 on its own origin (its CSP allows connect-src 'self' only).
module "web" {
  source = "./modules/web"

  name                    = local.name
  bucket                  = module.data.frontend_bucket
  logs_bucket_domain_name = module.data.cloudfront_logs_bucket_domain_name
  api_endpoint            = module.api.endpoint
  price_class             = var.web.price_class
  aliases                 = var.web.aliases
  certificate_arn         = var.web.certificate_arn
}

# A dashboard per service (its API, its worker, its topic and queues) and the alarms.
module "observability" {
  source = "./modules/observability"

  name        = local.name
  region      = var.region
  kms_key_arn = module.encryption.key_arn
  alarm_email = var.alarm_email

  load_balancer_arn_suffix = module.load_balancer.arn_suffix
  cluster_name             = module.cluster.name
  services                 = {
    for name, api in local.services : name => {
      target_group_arn_suffix = module.api_service[name].target_group_arn_suffix
      api_service_name        = module.api_service[name].service_name
      worker_service_name     = module.worker_service["${name}-worker"].service_name
      log_group_names         = [module.api_service[name].log_group_name, module.worker_service["${name}-worker"].log_group_name]
      topic_name              = contains(keys(local.bus.topics), name) ? module.bus.topic_names[name] : null
      queue_name              = contains(keys(local.bus.queues), name) ? module.bus.queues[name].name : null
      dlq_name                = contains(keys(local.bus.queues), name) ? module.bus.queues[name].dlq_name : null
    }
  }
  processes = {
    for name, process in local.processes : name => (
      process.kind == "api" ? module.api_service[name].service_name : module.worker_service[name].service_name
    )
  }
  database_instance_id     = module.data.database_instance_id
  database_max_connections = var.database.max_connections
}

# GitHub Actions' roles (OIDC, no stored keys): build.yml pushes the images, deploy.yml releases them
# (modules/github_deploy). Off until var.github names the repository.
module "github_deploy" {
  source = "./modules/github_deploy"
  count  = var.github == null ? 0 : 1

  name                 = local.name
  repository           = var.github.repository
  environment          = var.github.environment
  create_oidc_provider = var.github.create_oidc_provider
  account_id           = data.aws_caller_identity.current.account_id
  region               = var.region
  repository_arns      = values(module.registry.repository_arns)
  cluster_arn          = module.cluster.arn
  cluster_name         = module.cluster.name
  service_names = concat(
    [for name, api in module.api_service : api.service_name],
    [for name, worker in module.worker_service : worker.service_name],
  )
  migrate_task_family = module.migrate_task.task_definition_family
  task_role_arns = concat(
    [for name, api in module.api_service : api.task_role_arn],
    [for name, api in module.api_service : api.execution_role_arn],
    [for name, worker in module.worker_service : worker.task_role_arn],
    [for name, worker in module.worker_service : worker.execution_role_arn],
    [module.migrate_task.task_role_arn, module.migrate_task.execution_role_arn],
  )
}
