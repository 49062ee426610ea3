# stevedore next to the AWS provider: the task definition pins the image that
# stevedore_image_build pushed (by digest), aws_ecs_service switches to each new
# revision, and stevedore_ecs_redeploy follows the deployment that switch started
# (it does not force a second one), waits for it, and proves the new tasks run
# the digest that was built.
#
# Not validated by acceptance-tests/tests/examples.rs: it needs hashicorp/aws,
# which the offline test machine cannot install.

terraform {
  required_providers {
    aws       = { source = "hashicorp/aws", version = ">= 5.0" }
    stevedore = { source = "stevedore/stevedore" }
  }
}

variable "region" {
  type    = string
  default = "us-east-1"
}

variable "cluster" {
  type    = string
  default = "prod"
}

variable "subnets" {
  type = list(string)
}

variable "security_groups" {
  type = list(string)
}

variable "execution_role_arn" {
  type = string
}

provider "aws" {
  region = var.region
}

provider "stevedore" {
  aws {
    region = var.region
  }
}

resource "aws_ecr_repository" "web" {
  name = "web"
}

resource "stevedore_image_build" "web" {
  context    = "${path.module}/app"
  repository = aws_ecr_repository.web.repository_url
  tags       = ["latest"]
  platforms  = ["linux/amd64"] # the task definition's runtimePlatform below
}

resource "aws_ecs_task_definition" "web" {
  family                   = "web"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = "256"
  memory                   = "512"
  execution_role_arn       = var.execution_role_arn

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = "X86_64"
  }

  container_definitions = jsonencode([{
    name         = "web"
    image        = stevedore_image_build.web.image_uri # repository@digest: a new build is a new revision
    essential    = true
    portMappings = [{ containerPort = 80 }]
  }])
}

resource "aws_ecs_service" "web" {
  name            = "web"
  cluster         = var.cluster
  task_definition = aws_ecs_task_definition.web.arn
  desired_count   = 2
  launch_type     = "FARGATE"

  network_configuration {
    subnets         = var.subnets
    security_groups = var.security_groups
  }

  deployment_circuit_breaker {
    enable   = true
    rollback = true # a rollback fails the stevedore_ecs_redeploy apply, with the reasons
  }

  # stevedore_ecs_redeploy waits for the rollout and explains failures; waiting
  # here too would only wait twice. Leave force_new_deployment unset: the new
  # revision already starts the deployment.
  wait_for_steady_state = false
}

resource "stevedore_ecs_redeploy" "web" {
  cluster = var.cluster
  service = aws_ecs_service.web.name # also orders this after the service's update
  digest  = stevedore_image_build.web.digest

  timeouts {
    create = "20m"
    update = "20m"
  }
}

output "deployment_id" {
  value = stevedore_ecs_redeploy.web.deployment_id
}

output "running_image_digests" {
  value = stevedore_ecs_redeploy.web.running_image_digests
}
