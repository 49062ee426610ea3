# The id is CLUSTER/SERVICE: the cluster name (or ARN) and the service name,
# split at the last slash. The service's current PRIMARY deployment is recorded.
terraform import stevedore_ecs_redeploy.web prod/web
