# Staging: production-like (two NAT gateways, replica Redis), smaller, autoscaling 1-3 tasks.
env                = "staging"
region             = "us-west-1"
single_nat_gateway = false

api_task_size    = { cpu = 512, memory = 1024 }
worker_task_size = { cpu = 512, memory = 1024 }

autoscaling = {
  min_tasks           = 1
  max_tasks           = 3
  cpu_target          = 70
  memory_target       = 80
  backlog_per_task    = 100
  scale_in_cooldown_s = 300
}

database = {
  instance_class        = "db.t3.small"
  allocated_storage     = 50
  max_allocated_storage = 200
  multi_az              = false
  backup_retention_days = 7
  max_connections       = 200
  deletion_protection   = true
}

redis = {
  node_type       = "cache.t3.small"
  num_cache_nodes = 2
}

log_retention_days = 90
cors_allow_origins = ["https://staging.spendsense.example.com"]
api_throttle       = { rate_limit = 500, burst_limit = 1000 }

# GitHub Actions (build.yml pushes images, deploy.yml releases them; modules/github_deploy). Set the
# repository; the second deployment in one AWS account sets create_oidc_provider = false.
# github = { repository = "OWNER/REPO", environment = "staging", create_oidc_provider = true }
