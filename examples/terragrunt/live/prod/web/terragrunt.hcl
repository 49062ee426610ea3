include "root" {
  path = find_in_parent_folders()
}

terraform {
  source = "${get_repo_root()}/examples/terragrunt/modules//ecs-service"
}

inputs = {
  name            = "web"
  context         = "${get_repo_root()}/services/web" # CHANGE: the service's Dockerfile directory
  cluster         = "prod"
  container_port  = 80
  subnets         = ["subnet-0123456789abcdef0"] # CHANGE
  security_groups = ["sg-0123456789abcdef0"]     # CHANGE
  execution_role  = "arn:aws:iam::123456789012:role/ecsTaskExecutionRole" # CHANGE
}
