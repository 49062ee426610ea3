//! The state a fake ECS keeps: clusters → services → deployments, tasks,
//! container instances, and task definitions with revisions. `ops.rs`
//! answers the API from it; tests read and change it between calls.
//!
//! Rollouts move on by themselves, one step per DescribeServices, as ECS's
//! scheduler would: the first poll after a deployment starts finds its tasks
//! running, the `rollout_polls`-th finds it COMPLETED with the older
//! deployments' tasks stopped. What no model produces (FAILED rollouts,
//! rollbacks, throttling) the tests add with hooks.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

#[derive(Clone, Debug)]
pub struct TaskDef {
    pub arn: String,
    pub family: String,
    pub revision: u32,
    /// `(container name, image)`.
    pub containers: Vec<(String, String)>,
    /// `(operatingSystemFamily, cpuArchitecture)` when the definition sets one.
    pub runtime_platform: Option<(String, String)>,
}

#[derive(Clone, Debug)]
pub struct Deployment {
    pub id: String,
    /// PRIMARY, ACTIVE or INACTIVE.
    pub status: String,
    pub rollout_state: Option<String>,
    pub rollout_reason: Option<String>,
    pub task_definition: String,
    pub desired: i32,
    pub running: i32,
    pub pending: i32,
    pub created_at: f64,
    /// DescribeServices answers since it started; drives the rollout.
    pub polls: u32,
}

#[derive(Clone, Debug)]
pub struct Service {
    pub name: String,
    pub arn: String,
    pub status: String,
    pub desired: i32,
    pub task_definition: String,
    /// PRIMARY first.
    pub deployments: Vec<Deployment>,
    /// `(createdAt, message)`, newest first as ECS lists them.
    pub events: Vec<(f64, String)>,
    pub circuit_breaker: bool,
    pub launch_type: Option<String>,
    pub capacity_providers: Vec<String>,
    /// When false, deployments never move on by themselves (hooks decide).
    pub auto_rollout: bool,
    /// Whether deployments report a rolloutState (ECS does; moto-like services don't).
    pub rollout_states: bool,
}

#[derive(Clone, Debug)]
pub struct Task {
    pub arn: String,
    /// The service it belongs to (ECS's `group` is `service:<name>`).
    pub service: String,
    pub started_by: Option<String>,
    pub task_definition: String,
    /// RUNNING or STOPPED.
    pub desired_status: String,
    pub last_status: String,
    pub stopped_reason: Option<String>,
    /// `(container name, imageDigest reported, container reason)`.
    pub containers: Vec<(String, Option<String>, Option<String>)>,
    pub created_at: f64,
    pub stopped_at: Option<f64>,
}

#[derive(Clone, Debug)]
pub struct Instance {
    pub arn: String,
    /// The `ecs.cpu-architecture` attribute (`x86_64`, `arm64`), when reported.
    pub cpu_architecture: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct Cluster {
    pub services: BTreeMap<String, Service>,
    pub tasks: Vec<Task>,
    pub instances: Vec<Instance>,
}

#[derive(Debug)]
pub struct Model {
    pub clusters: BTreeMap<String, Cluster>,
    /// Family → revisions, revision n at index n-1.
    pub task_defs: BTreeMap<String, Vec<TaskDef>>,
    /// What a tagged image resolves to when ECS starts a task (image → digest);
    /// an image missing here and without `@digest` reports no digest.
    pub tag_digests: BTreeMap<String, String>,
    /// DescribeServices answers a deployment takes to complete (≥ 2).
    pub rollout_polls: u32,
    /// Deployments UpdateService started (the initial one of a service not counted).
    pub deployments_started: usize,
    next_id: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            clusters: BTreeMap::new(),
            task_defs: BTreeMap::new(),
            tag_digests: BTreeMap::new(),
            rollout_polls: 2,
            deployments_started: 0,
            next_id: 1000,
        }
    }
}

impl Model {
    fn next(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    pub fn add_cluster(&mut self, name: &str) -> &mut Cluster {
        self.clusters.entry(name.to_string()).or_default()
    }

    /// Registers a revision of `family`; returns its ARN.
    pub fn register(
        &mut self,
        family: &str,
        containers: &[(&str, &str)],
        runtime_platform: Option<(&str, &str)>,
    ) -> String {
        let revs = self.task_defs.entry(family.to_string()).or_default();
        let revision = revs.len() as u32 + 1;
        let arn = format!("arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{family}:{revision}");
        revs.push(TaskDef {
            arn: arn.clone(),
            family: family.to_string(),
            revision,
            containers: containers
                .iter()
                .map(|(n, i)| (n.to_string(), i.to_string()))
                .collect(),
            runtime_platform: runtime_platform.map(|(o, a)| (o.to_string(), a.to_string())),
        });
        arn
    }

    /// `family`, `family:rev` or an ARN, as ECS accepts them.
    pub fn task_def(&self, name: &str) -> Option<&TaskDef> {
        let short = name.rsplit('/').next().unwrap_or(name);
        let (family, rev) = match short.split_once(':') {
            Some((f, r)) => (f, r.parse::<usize>().ok()?),
            None => (short, self.task_defs.get(short)?.len()),
        };
        self.task_defs.get(family)?.get(rev.checked_sub(1)?)
    }

    /// A service running `task_def` with one COMPLETED deployment and its
    /// tasks already running. Returns the deployment id.
    pub fn add_service(
        &mut self,
        cluster: &str,
        name: &str,
        task_def: &str,
        desired: i32,
    ) -> String {
        let id = format!("ecs-svc/{}", self.next());
        let t = now() - 600.0;
        let service = Service {
            name: name.to_string(),
            arn: format!("arn:aws:ecs:{REGION}:{ACCOUNT}:service/{cluster}/{name}"),
            status: "ACTIVE".into(),
            desired,
            task_definition: task_def.to_string(),
            deployments: vec![Deployment {
                id: id.clone(),
                status: "PRIMARY".into(),
                rollout_state: Some("COMPLETED".into()),
                rollout_reason: Some("ECS deployment completed.".into()),
                task_definition: task_def.to_string(),
                desired,
                running: desired,
                pending: 0,
                created_at: t,
                polls: 0,
            }],
            events: vec![(t, format!("(service {name}) has reached a steady state."))],
            circuit_breaker: false,
            launch_type: Some("FARGATE".into()),
            capacity_providers: Vec::new(),
            auto_rollout: true,
            rollout_states: true,
        };
        self.add_cluster(cluster)
            .services
            .insert(name.to_string(), service);
        for _ in 0..desired {
            self.start_task(cluster, name, &id, task_def, t);
        }
        id
    }

    pub fn service(&mut self, cluster: &str, name: &str) -> &mut Service {
        self.clusters
            .get_mut(cluster)
            .and_then(|c| c.services.get_mut(name))
            .unwrap_or_else(|| panic!("the test made no service {cluster}/{name}"))
    }

    /// The digest ECS would report for `image` when it starts a task.
    pub fn digest_of(&self, image: &str) -> Option<String> {
        match image.split_once('@') {
            Some((_, digest)) => Some(digest.to_string()),
            None => self.tag_digests.get(image).cloned(),
        }
    }

    pub fn start_task(
        &mut self,
        cluster: &str,
        service: &str,
        deployment: &str,
        task_def: &str,
        at: f64,
    ) -> String {
        let arn = format!(
            "arn:aws:ecs:{REGION}:{ACCOUNT}:task/{cluster}/{:x}",
            self.next()
        );
        let containers = self
            .task_def(task_def)
            .map(|d| d.containers.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(name, image)| (name, self.digest_of(&image), None))
            .collect();
        self.add_cluster(cluster).tasks.push(Task {
            arn: arn.clone(),
            service: service.to_string(),
            started_by: Some(deployment.to_string()),
            task_definition: task_def.to_string(),
            desired_status: "RUNNING".into(),
            last_status: "RUNNING".into(),
            stopped_reason: None,
            containers,
            created_at: at,
            stopped_at: None,
        });
        arn
    }

    /// A task of `deployment` that stopped for `reason` (reported on its one container too).
    pub fn stopped_task(
        &mut self,
        cluster: &str,
        service: &str,
        deployment: &str,
        reason: &str,
    ) -> String {
        let task_def = self.service(cluster, service).task_definition.clone();
        let arn = self.start_task(cluster, service, deployment, &task_def, now());
        let task = self.task(cluster, &arn);
        task.desired_status = "STOPPED".into();
        task.last_status = "STOPPED".into();
        task.stopped_reason = Some(reason.to_string());
        task.stopped_at = Some(now());
        for c in &mut task.containers {
            c.2 = Some(reason.to_string());
        }
        arn
    }

    pub fn task(&mut self, cluster: &str, arn: &str) -> &mut Task {
        self.add_cluster(cluster)
            .tasks
            .iter_mut()
            .find(|t| t.arn == arn)
            .unwrap_or_else(|| panic!("no task {arn}"))
    }

    /// What UpdateService does when it starts a deployment: the new one is
    /// PRIMARY and IN_PROGRESS with no task yet, the older ones ACTIVE.
    pub fn start_deployment(&mut self, cluster: &str, service: &str, task_def: &str) -> String {
        let id = format!("ecs-svc/{}", self.next());
        self.deployments_started += 1;
        let t = now();
        let svc = self.service(cluster, service);
        for d in &mut svc.deployments {
            d.status = "ACTIVE".into();
        }
        svc.task_definition = task_def.to_string();
        let rollout = svc.rollout_states.then(|| "IN_PROGRESS".to_string());
        svc.deployments.insert(
            0,
            Deployment {
                id: id.clone(),
                status: "PRIMARY".into(),
                rollout_reason: rollout
                    .as_ref()
                    .map(|_| "ECS deployment in progress.".to_string()),
                rollout_state: rollout,
                task_definition: task_def.to_string(),
                desired: svc.desired,
                running: 0,
                pending: svc.desired,
                created_at: t,
                polls: 0,
            },
        );
        let name = svc.name.clone();
        svc.events.insert(
            0,
            (t, format!("(service {name}) has begun deployment {id}.")),
        );
        id
    }

    /// One scheduler step for every service of `cluster` (called per DescribeServices).
    pub fn tick(&mut self, cluster: &str) {
        let names: Vec<String> = match self.clusters.get(cluster) {
            Some(c) => c.services.keys().cloned().collect(),
            None => return,
        };
        for name in names {
            self.tick_service(cluster, &name);
        }
    }

    fn tick_service(&mut self, cluster: &str, name: &str) {
        let rollout_polls = self.rollout_polls.max(2);
        let svc = self.service(cluster, name);
        if !svc.auto_rollout || svc.status != "ACTIVE" {
            return;
        }
        let single = svc.deployments.len() == 1;
        let Some(primary) = svc.deployments.first_mut() else {
            return;
        };
        let done = primary.running == primary.desired && primary.pending == 0 && primary.polls > 0;
        if (done || primary.rollout_state.as_deref() == Some("COMPLETED")) && single {
            return;
        }
        primary.polls += 1;
        let (id, task_def, desired, polls) = (
            primary.id.clone(),
            primary.task_definition.clone(),
            primary.desired,
            primary.polls,
        );
        if polls == 1 {
            for _ in 0..desired {
                self.start_task(cluster, name, &id, &task_def, now());
            }
            let svc = self.service(cluster, name);
            svc.deployments[0].running = desired;
            svc.deployments[0].pending = 0;
        }
        if polls >= rollout_polls {
            self.finish_rollout(cluster, name);
        }
    }

    /// The PRIMARY deployment is done: older deployments go, their tasks stop.
    fn finish_rollout(&mut self, cluster: &str, name: &str) {
        let svc = self.service(cluster, name);
        let primary = &mut svc.deployments[0];
        let id = primary.id.clone();
        if svc.rollout_states {
            primary.rollout_state = Some("COMPLETED".into());
            primary.rollout_reason = Some("ECS deployment completed.".into());
        }
        let old: Vec<String> = svc.deployments.drain(1..).map(|d| d.id).collect();
        svc.events.insert(
            0,
            (
                now(),
                format!("(service {name}) has reached a steady state."),
            ),
        );
        for task in &mut self.add_cluster(cluster).tasks {
            let of_old = task.started_by.as_ref().is_some_and(|by| old.contains(by));
            if task.service == name && of_old && task.desired_status == "RUNNING" {
                task.desired_status = "STOPPED".into();
                task.last_status = "STOPPED".into();
                task.stopped_reason =
                    Some(format!("Scaling activity initiated by (deployment {id})"));
                task.stopped_at = Some(now());
            }
        }
    }
}
