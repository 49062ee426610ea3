# One service: its ECR repository, the image stevedore builds and pushes (linux/amd64, one
# clean manifest), a task definition pinning that image by digest, the ECS service, and the
# wait for the rollout.
#
# Not validated by acceptance-tests/tests/examples.rs: it needs hashicorp/aws, which the
# offline test machine cannot install.

terraform {
  required_providers {
    aws       = { source = "hashicorp/aws", version = ">= 5.0" }
    stevedore = { source = "stevedore/stevedore" }
  }
}

variable "name" { type = string }
variable "context" { type = string }
variable "cluster" { type = string }
variable "container_port" { type = number }
variable "subnets" { type = list(string) }
variable "security_groups" { type = list(string) }
variable "execution_role" { type = string }

resource "aws_ecr_repository" "this" {
  name = var.name
}

resource "stevedore_image_build" "this" {
  context      = var.context
  repository   = aws_ecr_repository.this.repository_url
  tags         = ["latest"]
  platforms    = ["linux/amd64"]                                      # matches runtime_platform below
  cache_from   = ["${aws_ecr_repository.this.repository_url}:latest"] # CI daemons start empty
  cache_inline = true
}

resource "aws_ecs_task_definition" "this" {
  family                   = var.name
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = var.execution_role

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name         = var.name
    image        = stevedore_image_build.this.image_uri # repository@digest
    essential    = true
    portMappings = [{ containerPort = var.container_port }]
  }])
}

resource "aws_ecs_service" "this" {
  name            = var.name
  cluster         = var.cluster
  task_definition = aws_ecs_task_definition.this.arn
  desired_count   = 2
  launch_type     = "FARGATE"

  network_configuration {
    subnets         = var.subnets
    security_groups = var.security_groups
  }
}

# Follows the deployment aws_ecs_service started for the new revision, waits until the new
# tasks run, and fails with the stopped tasks' reasons when they do not.
resource "stevedore_ecs_redeploy" "this" {
  cluster = var.cluster
  service = aws_ecs_service.this.name
  digest  = stevedore_image_build.this.digest
}

output "image_uri" {
  value = stevedore_image_build.this.image_uri
}
