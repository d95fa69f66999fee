output "database_instance_id" {
  description = "RDS instance identifier (CloudWatch dimension DBInstanceIdentifier)."
  value       = aws_db_instance.this.identifier
}

output "database_address" {
  description = "Host name of the RDS instance."
  value       = aws_db_instance.this.address
}

output "redis_primary_endpoint" {
  description = "Primary endpoint of the Redis replication group."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "database_url_secret_arn" {
  description = "Secret holding SPENDSENSE_DATABASE_URL."
  value       = aws_secretsmanager_secret.database_url.arn
}

output "redis_url_secret_arn" {
  description = "Secret holding SPENDSENSE_REDIS_URL."
  value       = aws_secretsmanager_secret.redis_url.arn
}

output "alb_logs_bucket" {
  description = "Logs bucket, once its policy lets the ALB write access logs (creating the ALB earlier fails)."
  value       = aws_s3_bucket.this["logs"].id
  depends_on  = [aws_s3_bucket_policy.this]
}

output "bucket_names" {
  description = "Bucket kind => name."
  value       = { for kind, bucket in aws_s3_bucket.this : kind => bucket.id }
}

output "bucket_arns" {
  description = "Bucket kind => ARN."
  value       = { for kind, bucket in aws_s3_bucket.this : kind => bucket.arn }
}

output "frontend_bucket" {
  description = "The web app's bucket: name, ARN, regional domain name (CloudFront's S3 origin) and the statements every bucket's policy has, which modules/web completes and applies."
  value = {
    id                   = aws_s3_bucket.this["frontend"].id
    arn                  = aws_s3_bucket.this["frontend"].arn
    regional_domain_name = aws_s3_bucket.this["frontend"].bucket_regional_domain_name
    policy_json          = data.aws_iam_policy_document.bucket["frontend"].json
  }
  depends_on = [aws_s3_bucket_public_access_block.this]
}

output "cloudfront_logs_bucket_domain_name" {
  description = "Logs bucket as CloudFront standard logging names it, once its ACLs are enabled (CloudFront refuses it before)."
  value       = aws_s3_bucket.this["logs"].bucket_domain_name
  depends_on  = [aws_s3_bucket_ownership_controls.this]
}

output "database_arn" {
  description = "ARN of the RDS instance (point-in-time restores start from it)."
  value       = aws_db_instance.this.arn
}
