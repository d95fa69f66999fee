# State: RDS PostgreSQL 16 (one database, a schema per service), ElastiCache Redis 7 and the S3 buckets,
# plus the two Secrets Manager entries the services connect with (URLs that embed the credentials).

# --- RDS PostgreSQL -----------------------------------------------------------------------------------

resource "random_password" "database" {
  length = 40
  # Characters that need no escaping in a URL or a shell; 40 of 62 is plenty of entropy.
  special = false
}

resource "aws_db_subnet_group" "this" {
  name       = "${var.name}-db-subnet-group"
  subnet_ids = var.database_subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name   = "${var.name}-db-params"
  family = "postgres16"

  parameter {
    name  = "rds.force_ssl" # no plaintext connections (asyncpg negotiates TLS by default)
    value = "1"
  }
  parameter {
    name         = "max_connections" # fixed, so that the 80 % alarm has a known ceiling
    value        = tostring(var.database.max_connections)
    apply_method = "pending-reboot"
  }
  parameter {
    name  = "log_min_duration_statement" # slow queries (ms) into the postgresql log export
    value = "500"
  }
  parameter {
    name  = "log_statement" # schema changes are audited
    value = "ddl"
  }
  parameter {
    name  = "log_connections"
    value = "1"
  }
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  name               = "${var.name}-rds-monitoring"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  role       = aws_iam_role.rds_monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "this" {
  identifier     = "${var.name}-db"
  engine         = "postgres"
  engine_version = "16" # the latest 16.x minor; auto_minor_version_upgrade keeps it patched
  instance_class = var.database.instance_class

  db_name  = "spendsense"
  username = "spendsense"
  password = random_password.database.result
  port     = 5432

  allocated_storage     = var.database.allocated_storage
  max_allocated_storage = var.database.max_allocated_storage
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = var.kms_key_arn

  multi_az               = var.database.multi_az
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [var.database_sg_id]
  publicly_accessible    = false
  parameter_group_name   = aws_db_parameter_group.this.name

  # Recovery (docs/runbook-restore.md): daily snapshots kept backup_retention_days (30 in prod) and the
  # transaction logs, shipped every 5 minutes, give point-in-time recovery to any second of that window
  # (RPO < 15 min). A final snapshot when the instance is deleted, and its automated backups kept after it.
  backup_retention_period   = var.database.backup_retention_days
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  deletion_protection       = var.database.deletion_protection
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.name}-db-final"
  delete_automated_backups  = false

  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  monitoring_interval                 = 60
  monitoring_role_arn                 = aws_iam_role.rds_monitoring.arn
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = var.kms_key_arn
}

# Optional: the automated backups (snapshots and transaction logs, so point-in-time recovery too) copied
# to another region, for a regional outage. Created through the replica region's provider.
resource "aws_db_instance_automated_backups_replication" "this" {
  count    = var.replication == null ? 0 : 1
  provider = aws.replica

  source_db_instance_arn = aws_db_instance.this.arn
  kms_key_id             = var.replication.database_kms_key_arn
  retention_period       = var.database.backup_retention_days
}

# --- ElastiCache Redis --------------------------------------------------------------------------------

resource "random_password" "redis" {
  length  = 64
  special = false # the auth token goes into a redis:// URL
}

resource "aws_elasticache_subnet_group" "this" {
  name       = "${var.name}-redis"
  subnet_ids = var.database_subnet_ids
}

resource "aws_cloudwatch_log_group" "redis_slow_log" {
  name              = "/elasticache/${var.name}/slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_elasticache_replication_group" "this" {
  #checkov:skip=CKV2_AWS_50:Multi-AZ failover is on whenever there is a replica (staging, prod: num_cache_nodes = 2); dev runs one node to save cost.
  replication_group_id = "${var.name}-redis"
  description          = "SpendSense ${var.name}: sessions, rate limits, caches"
  engine               = "redis"
  engine_version       = "7.1"
  node_type            = var.redis.node_type
  num_cache_clusters   = var.redis.num_cache_nodes
  port                 = 6379
  parameter_group_name = "default.redis7"

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [var.redis_sg_id]

  # With a replica, fail over automatically to the other AZ.
  automatic_failover_enabled = var.redis.num_cache_nodes > 1
  multi_az_enabled           = var.redis.num_cache_nodes > 1

  at_rest_encryption_enabled = true
  kms_key_id                 = var.kms_key_arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result

  snapshot_retention_limit   = 7
  snapshot_window            = "02:00-03:00"
  maintenance_window         = "sun:05:30-sun:06:30"
  auto_minor_version_upgrade = true

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis_slow_log.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}

# --- Connection secrets (what SPENDSENSE_DATABASE_URL and SPENDSENSE_REDIS_URL are set from) ----------

resource "aws_secretsmanager_secret" "database_url" {
  #checkov:skip=CKV2_AWS_57:The password is Terraform's (random_password): rotate with `terraform apply -replace=module.data.random_password.database`, as the URL must change with it.
  name                    = "${var.name}/database-url"
  description             = "SQLAlchemy URL of the SpendSense database (asyncpg driver)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "database_url" {
  secret_id     = aws_secretsmanager_secret.database_url.id
  secret_string = "postgresql+asyncpg://${aws_db_instance.this.username}:${random_password.database.result}@${aws_db_instance.this.address}:${aws_db_instance.this.port}/${aws_db_instance.this.db_name}"
}

resource "aws_secretsmanager_secret" "redis_url" {
  #checkov:skip=CKV2_AWS_57:The auth token is Terraform's (random_password): rotate with `terraform apply -replace=module.data.random_password.redis`.
  name                    = "${var.name}/redis-url"
  description             = "URL of the SpendSense Redis (TLS, auth token)"
  kms_key_id              = var.kms_key_arn
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${random_password.redis.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379/0"
}

# --- S3 -----------------------------------------------------------------------------------------------
# Names come from the event-bus declaration (spendsense-{kind}-{env}[-{owner_id}]), like the topics.

locals {
  # Lifecycle per bucket, as the architecture document has it: Parquet data to Glacier after 90 days,
  # logs deleted after 90 days, reports after a year; the frontend keeps only its current build.
  lifecycle = {
    data     = { glacier_after_days = 90, expire_after_days = 0 }
    logs     = { glacier_after_days = 0, expire_after_days = 90 }
    reports  = { glacier_after_days = 0, expire_after_days = 365 }
    frontend = { glacier_after_days = 0, expire_after_days = 0 }
  }
}

resource "aws_s3_bucket" "this" {
  #checkov:skip=CKV_AWS_144:Cross-region replication is optional (var.replication, the data bucket only: the others hold logs, reports and a rebuildable web app); versioning meets the RPO within the region.
  #checkov:skip=CKV2_AWS_62:No consumer of S3 event notifications; uploads are announced by the profile service's upload.ingested event.
  #checkov:skip=CKV_AWS_18:Access logs of every bucket go to the logs bucket (aws_s3_bucket_logging.this); the logs bucket does not log into itself.
  for_each = var.buckets

  bucket = each.value
  # Production data is never destroyed with the stack; dev/staging buckets can be emptied first.
  force_destroy = false
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

# ACLs are disabled everywhere except on the logs bucket: CloudFront's standard logging delivers only
# through a bucket ACL grant (to its awslogsdelivery account, which CloudFront adds itself). Objects
# written with bucket-owner-full-control still become the bucket owner's; public ACLs stay blocked above.
resource "aws_s3_bucket_ownership_controls" "this" {
  #checkov:skip=CKV2_AWS_65:ACLs stay enabled on the logs bucket only (BucketOwnerPreferred), because CloudFront standard logging writes through an ACL grant; every other bucket is BucketOwnerEnforced.
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    object_ownership = each.key == "logs" ? "BucketOwnerPreferred" : "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

# Data, reports and frontend: the deployment's KMS key.
resource "aws_s3_bucket_server_side_encryption_configuration" "kms" {
  for_each = { for kind, bucket in aws_s3_bucket.this : kind => bucket if kind != "logs" }

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = "aws:kms"
      kms_master_key_id = var.kms_key_arn
    }
    bucket_key_enabled = true
  }
}

# Logs: SSE-S3 (AES-256), the only encryption ALB access-log delivery and S3 server access logging accept.
resource "aws_s3_bucket_server_side_encryption_configuration" "logs" {
  bucket = aws_s3_bucket.this["logs"].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id

  rule {
    id     = "housekeeping"
    status = "Enabled"
    filter {}

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }

    dynamic "transition" {
      for_each = local.lifecycle[each.key].glacier_after_days > 0 ? [local.lifecycle[each.key].glacier_after_days] : []
      content {
        days          = transition.value
        storage_class = "GLACIER"
      }
    }

    dynamic "expiration" {
      for_each = local.lifecycle[each.key].expire_after_days > 0 ? [local.lifecycle[each.key].expire_after_days] : []
      content {
        days = expiration.value
      }
    }
  }
}

resource "aws_s3_bucket_logging" "this" {
  for_each = { for kind, bucket in aws_s3_bucket.this : kind => bucket if kind != "logs" }

  bucket        = each.value.id
  target_bucket = aws_s3_bucket.this["logs"].id
  target_prefix = "s3-access/${each.key}/"
}

data "aws_elb_service_account" "this" {}

data "aws_iam_policy_document" "bucket" {
  for_each = aws_s3_bucket.this

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [
      each.value.arn,
      "${each.value.arn}/*",
    ]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  dynamic "statement" {
    for_each = each.key == "logs" ? [1] : []
    content {
      sid       = "AlbAccessLogs"
      actions   = ["s3:PutObject"]
      resources = ["${each.value.arn}/alb/*"]
      principals {
        type        = "AWS"
        identifiers = [data.aws_elb_service_account.this.arn]
      }
    }
  }

  dynamic "statement" {
    for_each = each.key == "logs" ? [1] : []
    content {
      sid       = "S3ServerAccessLogs"
      actions   = ["s3:PutObject"]
      resources = ["${each.value.arn}/s3-access/*"]
      principals {
        type        = "Service"
        identifiers = ["logging.s3.amazonaws.com"]
      }
    }
  }
}

# The frontend bucket's policy is written by modules/web, which adds to these statements that its CloudFront
# distribution may read the bucket (output frontend_bucket): one policy per bucket.
resource "aws_s3_bucket_policy" "this" {
  for_each = { for kind, bucket in aws_s3_bucket.this : kind => bucket if kind != "frontend" }

  bucket = each.value.id
  policy = data.aws_iam_policy_document.bucket[each.key].json

  depends_on = [aws_s3_bucket_public_access_block.this]
}

# --- Optional replication of the data bucket to another region -----------------------------------------
# Every new object version (and delete marker) of the data bucket is copied to an existing, versioned
# bucket in the replica region, within 15 minutes (S3 Replication Time Control, with its metrics): the RPO.

data "aws_iam_policy_document" "replication_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["s3.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "replication" {
  count = var.replication == null ? 0 : 1

  name               = "${var.name}-data-replication"
  assume_role_policy = data.aws_iam_policy_document.replication_assume.json
}

data "aws_iam_policy_document" "replication" {
  count = var.replication == null ? 0 : 1

  statement {
    sid       = "ReadSourceConfiguration"
    actions   = ["s3:GetReplicationConfiguration", "s3:ListBucket"]
    resources = [aws_s3_bucket.this["data"].arn]
  }
  statement {
    sid       = "ReadSourceVersions"
    actions   = ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging"]
    resources = ["${aws_s3_bucket.this["data"].arn}/*"]
  }
  statement {
    sid       = "WriteReplicas"
    actions   = ["s3:ReplicateObject", "s3:ReplicateDelete", "s3:ReplicateTags"]
    resources = ["${var.replication.data_bucket_arn}/*"]
  }
  statement {
    sid       = "DecryptSource"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]
  }
  statement {
    sid       = "EncryptReplica"
    actions   = ["kms:Encrypt", "kms:GenerateDataKey"]
    resources = [var.replication.data_kms_key_arn]
  }
}

resource "aws_iam_role_policy" "replication" {
  count = var.replication == null ? 0 : 1

  name   = "replicate-data"
  role   = aws_iam_role.replication[0].id
  policy = data.aws_iam_policy_document.replication[0].json
}

resource "aws_s3_bucket_replication_configuration" "data" {
  count = var.replication == null ? 0 : 1

  bucket = aws_s3_bucket.this["data"].id
  role   = aws_iam_role.replication[0].arn

  rule {
    id     = "data-to-replica-region"
    status = "Enabled"
    filter {}

    delete_marker_replication {
      status = "Enabled"
    }
    source_selection_criteria {
      sse_kms_encrypted_objects {
        status = "Enabled"
      }
    }
    destination {
      bucket        = var.replication.data_bucket_arn
      storage_class = "STANDARD_IA"
      encryption_configuration {
        replica_kms_key_id = var.replication.data_kms_key_arn
      }
      replication_time {
        status = "Enabled"
        time {
          minutes = 15
        }
      }
      metrics {
        status = "Enabled"
        event_threshold {
          minutes = 15
        }
      }
    }
  }

  depends_on = [aws_s3_bucket_versioning.this]
}
