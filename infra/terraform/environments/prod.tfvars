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
