# Production: Multi-AZ everywhere, 30 days of backups, autoscaling 2-10 tasks, a year of logs.
env                = "prod"
region             = "us-west-1"
single_nat_gateway = false

api_task_size    = { cpu = 1024, memory = 2048 }
worker_task_size = { cpu = 1024, memory = 2048 }

autoscaling = {
  min_tasks           = 2
  max_tasks           = 10
  cpu_target          = 70
  memory_target       = 80
  backlog_per_task    = 100
  scale_in_cooldown_s = 300
}

database = {
  instance_class        = "db.t3.large"
  allocated_storage     = 500
  max_allocated_storage = 1000
  multi_az              = true
  backup_retention_days = 30
  max_connections       = 500
  deletion_protection   = true
}

redis = {
  node_type       = "cache.t3.small"
  num_cache_nodes = 2
}

log_retention_days = 365
cors_allow_origins = ["https://app.spendsense.example.com"]
api_throttle       = { rate_limit = 1000, burst_limit = 2000 }
alarm_email        = "sre@spendsense.example.com"

# GitHub Actions (build.yml pushes images, deploy.yml releases them; modules/github_deploy). Set the
# repository; the second deployment in one AWS account sets create_oidc_provider = false.
# github = { repository = "OWNER/REPO", environment = "production", create_oidc_provider = true }

# Copies in another region for a regional outage (docs/runbook-restore.md): RDS automated backups and
# the data bucket. Needs a KMS key in that region and an existing versioned bucket there.
# replication = {
#   region               = "us-east-2"
#   database_kms_key_arn = "arn:aws:kms:us-east-2:<account>:key/<id>"
#   data_bucket_arn      = "arn:aws:s3:::spendsense-data-prod-replica"
#   data_kms_key_arn     = "arn:aws:kms:us-east-2:<account>:key/<id>"
# }
