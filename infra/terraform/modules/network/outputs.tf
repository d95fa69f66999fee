output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "public_subnet_ids" {
  description = "Public subnets (NAT gateways)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets (ECS tasks, internal ALB, API Gateway VPC link, endpoints)."
  value       = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  description = "Isolated subnets for RDS and ElastiCache."
  value       = aws_subnet.database[*].id
}

output "alb_sg_id" {
  description = "Security group of the internal ALB."
  value       = aws_security_group.alb.id
}

output "tasks_sg_id" {
  description = "Security group of every ECS task."
  value       = aws_security_group.tasks.id
}

output "database_sg_id" {
  description = "Security group of RDS."
  value       = aws_security_group.database.id
}

output "redis_sg_id" {
  description = "Security group of ElastiCache."
  value       = aws_security_group.redis.id
}

output "vpc_link_sg_id" {
  description = "Security group of the API Gateway VPC link."
  value       = aws_security_group.vpc_link.id
}
