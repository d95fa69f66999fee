terraform {
  # 1.6 is the version the architecture document names; anything 1.x from there on reads this code.
  required_version = ">= 1.6.0, < 2.0.0"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # A recent 5.x: the workers' scaling on backlog per task uses target tracking on metric math.
      version = ">= 5.50.0, < 6.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6.0, < 4.0.0"
    }
  }

  # Partial configuration: bucket, key, region and lock table are given at `terraform init` with
  # -backend-config=environments/<env>.backend.hcl (see infra/README.md), so one code base serves every
  # environment and every owner_id without the state of one overwriting another's.
  backend "s3" {}
}
