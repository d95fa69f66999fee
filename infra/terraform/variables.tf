# Inputs of the root module. Per-environment values live in environments/{dev,staging,prod}.tfvars;
# what the code itself declares (services, workers, event bus, routes) comes from ./generated instead.

variable "env" {
  description = "Environment: dev, staging or prod. Part of every resource name and of SPENDSENSE_ENV."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.env)
    error_message = "env must be one of dev, staging, prod."
  }
}

variable "owner_id" {
  description = <<-EOT
    Optional owner of a deployment in a shared AWS account (e.g. "chuong"): when set, every name carries
    it (spendsense-data-dev-chuong, spendsense-dev-chuong-auth-events, ...) so that several people can
    deploy the same environment side by side. Empty for the team's own environments.
  EOT
  type    = string
  default = ""

  validation {
    # Short, because it ends up in names AWS caps at 32 (ALB) or 40 (ElastiCache) characters, and
    # "{env}-{owner_id}" must fit SPENDSENSE_ENV's 20 characters.
    condition     = can(regex("^([a-z][a-z0-9]{0,7})?$", var.owner_id))
    error_message = "owner_id must be empty or 1-8 lowercase letters/digits, starting with a letter."
  }
}

variable "region" {
  description = "AWS region to deploy into."
  type        = string
  default     = "us-west-1"

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must look like us-west-1."
  }
}

variable "image_tag" {
  description = "Tag of the images to run (the git SHA pushed to ECR; tags are immutable)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]{1,128}$", var.image_tag)) && var.image_tag != "latest"
    error_message = "image_tag must be a real tag (e.g. the git SHA), not 'latest': ECR tags are immutable."
  }
}

# --- Network ------------------------------------------------------------------------------------------

variable "vpc_cidr" {
  description = "CIDR block of the VPC."
  type        = string
  default     = "10.0.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR block."
  }
}

variable "availability_zones" {
  description = <<-EOT
    The two availability zones to use, pinned so that AWS adding a zone never moves a subnet. Zone names
    differ between accounts (`aws ec2 describe-availability-zones`); empty takes the first two available.
  EOT
  type    = list(string)
  default = []

  validation {
    condition     = length(var.availability_zones) == 0 || length(var.availability_zones) == 2
    error_message = "Give two availability zones, or none."
  }
}

variable "public_subnet_cidrs" {
  description = "Two public subnets (NAT gateways), one per availability zone."
  type        = list(string)
  default     = ["10.0.1.0/24", "10.0.2.0/24"]

  validation {
    condition     = length(var.public_subnet_cidrs) == 2
    error_message = "Give exactly two public subnets (two availability zones)."
  }
}

variable "private_subnet_cidrs" {
  description = "Two private subnets (ECS tasks, internal ALB, VPC endpoints), one per availability zone."
  type        = list(string)
  default     = ["10.0.10.0/24", "10.0.11.0/24"]

  validation {
    condition     = length(var.private_subnet_cidrs) == 2
    error_message = "Give exactly two private subnets (two availability zones)."
  }
}

variable "database_subnet_cidrs" {
  description = "Two isolated database subnets (RDS, ElastiCache), one per availability zone."
  type        = list(string)
  default     = ["10.0.20.0/24", "10.0.21.0/24"]

  validation {
    condition     = length(var.database_subnet_cidrs) == 2
    error_message = "Give exactly two database subnets (two availability zones)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for both AZs (cheaper, for dev) instead of one per AZ (high availability)."
  type        = bool
  default     = false
}

# --- Compute ------------------------------------------------------------------------------------------

variable "api_task_size" {
  description = "Fargate CPU units and memory (MiB) of each service's API task."
  type        = object({ cpu = number, memory = number })
  default     = { cpu = 512, memory = 1024 }

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.api_task_size.cpu) && var.api_task_size.memory >= 512
    error_message = "cpu must be a Fargate size (256-4096) and memory at least 512 MiB."
  }
}

variable "worker_task_size" {
  description = "Fargate CPU units and memory (MiB) of each service's worker task."
  type        = object({ cpu = number, memory = number })
  default     = { cpu = 512, memory = 1024 }

  validation {
    condition     = contains([256, 512, 1024, 2048, 4096], var.worker_task_size.cpu) && var.worker_task_size.memory >= 512
    error_message = "cpu must be a Fargate size (256-4096) and memory at least 512 MiB."
  }
}

variable "autoscaling" {
  description = <<-EOT
    Task counts and targets for every API and worker: min/max tasks, target CPU and memory utilization (%),
    and for workers the queue backlog (visible messages) per task to aim for.
  EOT
  type = object({
    min_tasks           = number
    max_tasks           = number
    cpu_target          = number
    memory_target       = number
    backlog_per_task    = number
    scale_in_cooldown_s = number
  })
  default = {
    min_tasks           = 1
    max_tasks           = 3
    cpu_target          = 70
    memory_target       = 80
    backlog_per_task    = 100
    scale_in_cooldown_s = 300
  }

  validation {
    condition     = var.autoscaling.min_tasks >= 1 && var.autoscaling.max_tasks >= var.autoscaling.min_tasks
    error_message = "Need 1 <= min_tasks <= max_tasks."
  }
}

# --- Data ---------------------------------------------------------------------------------------------

variable "database" {
  description = <<-EOT
    RDS PostgreSQL 16: instance class, storage (GiB, and the autoscaling ceiling), Multi-AZ, days of
    automated backups, max_connections (the alarm fires at 80 % of it) and deletion protection.
  EOT
  type = object({
    instance_class        = string
    allocated_storage     = number
    max_allocated_storage = number
    multi_az              = bool
    backup_retention_days = number
    max_connections       = number
    deletion_protection   = bool
  })

  validation {
    condition     = var.database.backup_retention_days >= 1 && var.database.backup_retention_days <= 35
    error_message = "backup_retention_days must be 1-35 (0 would disable backups)."
  }
  validation {
    condition     = var.database.max_allocated_storage >= var.database.allocated_storage
    error_message = "max_allocated_storage must be at least allocated_storage."
  }
}

variable "redis" {
  description = "ElastiCache Redis 7: node type and number of nodes (2+ gives a replica and automatic failover)."
  type        = object({
    node_type       = string
    num_cache_nodes = number
  })

  validation {
    condition     = var.redis.num_cache_nodes >= 1 && var.redis.num_cache_nodes <= 6
    error_message = "num_cache_nodes must be 1-6."
  }
}

variable "replication" {
  description = <<-EOT
    Optional copies in another region, for a regional outage (docs/runbook-restore.md): the RDS automated
    backups (snapshots and transaction logs, so point-in-time recovery there too) and every object version
    of the data bucket (within 15 minutes, S3 Replication Time Control). Give the region, a KMS key there
    for the database backups, and an existing versioned bucket there with its KMS key. null: none.
  EOT
  type = object({
    region               = string
    database_kms_key_arn = string
    data_bucket_arn      = string
    data_kms_key_arn     = string
  })
  default = null

  validation {
    condition     = var.replication == null || can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.replication.region))
    error_message = "replication.region must look like us-east-2."
  }
  validation {
    condition     = var.replication == null || can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9.-]{3,63}$", var.replication.data_bucket_arn))
    error_message = "replication.data_bucket_arn must be a bucket ARN (arn:aws:s3:::name)."
  }
}

# --- Edge and operations ------------------------------------------------------------------------------

variable "cors_allow_origins" {
  description = "Origins allowed to call the API from a browser (the web app's URL)."
  type        = list(string)
  default     = []
}

variable "api_throttle" {
  description = "API Gateway default throttling: steady requests per second and burst."
  type        = object({ rate_limit = number, burst_limit = number })
  default     = { rate_limit = 1000, burst_limit = 2000 }

  validation {
    condition     = var.api_throttle.rate_limit > 0 && var.api_throttle.burst_limit >= var.api_throttle.rate_limit
    error_message = "rate_limit must be positive and burst_limit at least rate_limit."
  }
}

variable "log_retention_days" {
  description = "Days CloudWatch keeps application and access logs (audit logs: a year in prod)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts (e.g. 30, 90, 365)."
  }
}

variable "alarm_email" {
  description = "Address that receives alarm notifications (empty: subscribe something to the alarm topic yourself)."
  type        = string
  default     = ""

  validation {
    condition     = var.alarm_email == "" || can(regex("^[^@\\s]+@[^@\\s]+$", var.alarm_email))
    error_message = "alarm_email must be empty or an e-mail address."
  }
}

variable "admin_email" {
  description = "Email of the bootstrap admin account, created at the auth service's start with the password in the \"admin-password\" secret. Empty: no bootstrap admin."
  type        = string
  default     = ""
}

# --- Mobile push --------------------------------------------------------------------------------------

variable "push" {
  description = <<-EOT
    Mobile push through Amazon SNS (the profile worker; services/profile/.../adapters/push.py): the APNs
    identifiers and whether iOS pushes go to the APNs sandbox (development builds: platform APNS_SANDBOX).
    Token auth (.p8 key): apns_principal is the signing key id, with apns_team_id and apns_bundle_id;
    certificate auth: apns_principal is the certificate and the other two stay empty. The credentials
    themselves are the secrets "push-apns-credential" and "push-fcm-credential" (infra/README.md).
  EOT
  type = object({
    apns_principal = optional(string, "")
    apns_team_id   = optional(string, "")
    apns_bundle_id = optional(string, "")
    apns_sandbox   = optional(bool, false)
  })
  default = {}
}

# --- Web app ------------------------------------------------------------------------------------------

variable "web" {
  description = <<-EOT
    The web app's CloudFront distribution: price class, and optionally its own domain names with an ACM
    certificate for them, which CloudFront requires in us-east-1. Without aliases it is served at the
    distribution's *.cloudfront.net name with CloudFront's certificate.
  EOT
  type = object({
    price_class     = optional(string, "PriceClass_100")
    aliases         = optional(list(string), [])
    certificate_arn = optional(string, "")
  })
  default = {}

  validation {
    condition     = contains(["PriceClass_100", "PriceClass_200", "PriceClass_All"], var.web.price_class)
    error_message = "web.price_class must be PriceClass_100, PriceClass_200 or PriceClass_All."
  }
  validation {
    condition     = (length(var.web.aliases) == 0) == (var.web.certificate_arn == "")
    error_message = "Give web.aliases and web.certificate_arn together (the certificate must cover the aliases)."
  }
  validation {
    condition     = var.web.certificate_arn == "" || can(regex("^arn:aws[a-z-]*:acm:us-east-1:[0-9]{12}:certificate/", var.web.certificate_arn))
    error_message = "web.certificate_arn must be an ACM certificate in us-east-1 (CloudFront reads certificates only there)."
  }
}

# --- Delivery -----------------------------------------------------------------------------------------

variable "github" {
  description = <<-EOT
    The GitHub repository whose Actions build and release to this deployment (modules/github_deploy):
    OWNER/REPO, the GitHub environment of its deploy jobs ("staging", "production"), and whether to create
    GitHub's OIDC provider (once per AWS account). null: no GitHub access.
  EOT
  type = object({
    repository           = string
    environment          = string
    create_oidc_provider = optional(bool, true)
  })
  default = null
}
