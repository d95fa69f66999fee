# Development: minimal and cheap. One NAT gateway, single-AZ database, one Redis node, autoscaling
# effectively off (one task per process). Add owner_id for a personal copy in a shared account:
#   terraform apply -var-file=environments/dev.tfvars -var="owner_id=chuong"
env                = "dev"
region             = "us-west-1"
single_nat_gateway = true

api_task_size    = { cpu = 512, memory = 1024 }
worker_task_size = { cpu = 256, memory = 512 }

autoscaling = {
  min_tasks           = 1
  max_tasks           = 1
  cpu_target          = 70
  memory_target       = 80
  backlog_per_task    = 100
  scale_in_cooldown_s = 300
}

database = {
  instance_class        = "db.t3.micro"
  allocated_storage     = 20
  max_allocated_storage = 100
  multi_az              = false
  backup_retention_days = 7
  max_connections       = 100
  deletion_protection   = false
}

redis = {
  node_type       = "cache.t3.micro"
  num_cache_nodes = 1
}

log_retention_days = 30
cors_allow_origins = ["http://localhost:5173"]
api_throttle       = { rate_limit = 100, burst_limit = 200 }
