//! ECR credentials through aws-sdk-ecr against moto: a `registry_auth` entry
//! with `ecr = true` resolves to the token GetAuthorizationToken returns.

use acceptance_tests::moto::Moto;
use stevedore::aws::AwsSettings;
use stevedore::registry::{AuthSettings, Credential, RegistryAuth};

#[test]
#[ignore = "acceptance: run make testacc"]
fn ecr_entry_resolves_to_a_token_from_get_authorization_token() {
    // The fixture speaks blocking HTTP, so it lives outside the async runtime.
    let moto = Moto::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    acceptance_tests::moto::export_aws_env();
    let settings = AuthSettings {
        entries: vec![RegistryAuth {
            address: "127.0.0.1:5999".into(),
            ecr: true,
            ..Default::default()
        }],
        docker_config_file: None,
        aws: AwsSettings {
            region: Some("us-east-1".into()),
            ecr_endpoint: Some(moto.url.clone()),
            ..Default::default()
        },
    };
    match rt
        .block_on(settings.resolve("127.0.0.1:5999"))
        .expect("ECR token")
    {
        Credential::Basic { username, password } => {
            assert_eq!(username, "AWS");
            assert!(!password.is_empty());
        }
        other => panic!("expected basic credentials from ECR, got {other:?}"),
    }
}
