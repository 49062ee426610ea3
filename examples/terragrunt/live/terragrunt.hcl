# Shared by every service under live/: state in S3, and the provider blocks.
remote_state {
  backend = "s3"
  generate = {
    path      = "backend.tf"
    if_exists = "overwrite"
  }
  config = {
    bucket         = "example-terraform-state" # CHANGE
    key            = "${path_relative_to_include()}/terraform.tfstate"
    region         = "us-east-1"
    encrypt        = true
    dynamodb_table = "terraform-locks"
  }
}

generate "providers" {
  path      = "providers.tf"
  if_exists = "overwrite"
  contents  = <<PROVIDERS
provider "aws" {
  region = "us-east-1"
}

# ECR credentials come from the same AWS credential chain as the aws provider's.
provider "stevedore" {
  aws {
    region = "us-east-1"
  }
}
PROVIDERS
}
