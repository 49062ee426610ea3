# Build the app for the platform the task definition runs on, then roll the ECS
# service onto it. The task definition refers to the image by tag (`:latest`), so
# a new push alone would not restart anything: the digest wiring below does.

resource "stevedore_image_build" "app" {
  context    = "${path.module}/app"
  repository = "123456789012.dkr.ecr.us-east-1.amazonaws.com/web"
  tags       = ["latest"]
  platforms  = ["linux/amd64"] # what the task definition's runtimePlatform says (X86_64)
}

resource "stevedore_ecs_redeploy" "web" {
  cluster = "prod"
  service = "web"

  # A new image digest forces a new deployment; so does a change of any trigger.
  digest   = stevedore_image_build.app.digest
  triggers = { config = sha1(file("${path.module}/app/config.yaml")) }

  # Defaults, shown for clarity: check the task definition's images against its
  # runtimePlatform before deploying, and wait until the new tasks run.
  verify_images         = true
  wait_for_steady_state = true

  timeouts {
    create = "15m"
    update = "20m"
  }
}

output "deployment_id" {
  value = stevedore_ecs_redeploy.web.deployment_id
}

output "running_image_digests" {
  value = stevedore_ecs_redeploy.web.running_image_digests
}
