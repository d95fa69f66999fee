# The internal Application Load Balancer in front of the five APIs. It is reached only through the API
# Gateway VPC link (and by the tasks for the auth service's JWKS). API Gateway sets a header naming the
# service a route belongs to; each service's listener rule matches that header (modules/ecs_service), so
# the route table lives in one place only (API Gateway, generated from ROUTES).

resource "aws_lb" "this" {
  #checkov:skip=CKV2_AWS_20:No HTTPS redirect: nothing outside the VPC reaches this ALB; API Gateway serves HTTPS only.
  #checkov:skip=CKV2_AWS_28:Internal ALB behind API Gateway; WAF cannot be attached to an HTTP API and the ALB has no public address.
  name                       = "${var.name}-alb"
  internal                   = true
  load_balancer_type         = "application"
  subnets                    = var.subnet_ids
  security_groups            = [var.security_group_id]
  drop_invalid_header_fields = true
  enable_deletion_protection = var.deletion_protection
  idle_timeout               = 60

  access_logs {
    bucket  = var.access_logs_bucket
    prefix  = "alb"
    enabled = true
  }
}

resource "aws_lb_listener" "http" {
  #checkov:skip=CKV_AWS_2:TLS terminates at API Gateway; this listener is internal, reachable only from the VPC link and the tasks' security groups.
  #checkov:skip=CKV_AWS_103:No TLS on this internal listener (see CKV_AWS_2).
  load_balancer_arn = aws_lb.this.arn
  port              = 80
  protocol          = "HTTP"

  # Requests for no known service (no header, unknown path) get a plain 404.
  default_action {
    type = "fixed-response"
    fixed_response {
      content_type = "application/json"
      message_body = "{\"detail\": \"Not Found\"}"
      status_code  = "404"
    }
  }
}
