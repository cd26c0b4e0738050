//! Test support for resource kinds: an `Aws` whose every call is answered by recorded
//! responses, so a kind's calls and its reading of AWS's answers are tested without a
//! network. A call no rule matches panics: a test that sets no rule for a service proves the
//! kind never calls it.
//!
//! The rules are those of aws-smithy-mocks (`mock!(Client::operation)`, `match_requests`,
//! `then_output`, `then_error`, `num_calls`), answered by an interceptor of ours: that crate
//! turns on test features of the SDK's HTTP client which switch serde_json to insertion
//! order in every test build, and so would change the binary the integration tests run.

use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::Credentials;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextMut, Error,
    FinalizerInterceptorContextMut, Input, Output,
};
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse, OrchestratorError};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use aws_types::sdk_config::SharedCredentialsProvider;

use crate::aws::{Aws, Caller};
use crate::profile::{self, Profile, Runtime};

pub const ACCOUNT: &str = "123456789012";
pub const HOME: &str = "us-east-1";
/// A second region, so per-region kinds meet both their home and forwarding forms.
pub const OTHER: &str = "eu-west-1";

/// Clients answered by `rules`: each call by the first rule that matches it, as often as it
/// matches.
pub fn aws(rules: &[&Rule]) -> Aws {
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(HOME))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new("test", "test", None, None, "test")))
        .retry_config(RetryConfig::disabled())
        .http_client(Canned)
        .build();
    let answers = Answers { rules: rules.iter().map(|r| (*r).clone()).collect(), pending: Default::default() };
    let caller = Caller { account_id: ACCOUNT.into(), partition: "aws".into(), region: HOME.into() };
    Aws::with_interceptor(&config, caller, &regions(), SharedInterceptor::new(answers))
}

fn regions() -> Vec<String> {
    vec![HOME.to_string(), OTHER.to_string()]
}

/// The shipped ai-agent-guard profile, resolved for the test account in two regions.
pub fn flagship() -> Profile {
    let runtime = Runtime {
        account_id: ACCOUNT.into(),
        partition: "aws".into(),
        region: HOME.into(),
        enabled_regions: regions(),
        organization: None,
    };
    let loaded = profile::load("ai-agent-guard").expect("the shipped profile loads");
    loaded.resolve(&runtime, &Default::default()).expect("the shipped profile resolves")
}

/// `mock!(aws_sdk_sns::Client::create_topic)`: a rule for that operation, typed by it.
#[macro_export]
macro_rules! mock {
    ($operation:expr) => {
        #[allow(unreachable_code)]
        {
            // Never called: the closures only carry the operation's input, output and error
            // types to the rule builder.
            $crate::resources::testing::RuleBuilder::new(
                || $operation(unreachable!("a type carrier, never called")).as_input().clone().build().unwrap(),
                || $operation(unreachable!("a type carrier, never called")).send(),
            )
        }
    };
}
pub use crate::mock;

/// What a rule answers.
enum Answer {
    Output(Output),
    Error(Error),
    Http(Arc<dyn Fn() -> HttpResponse + Send + Sync>),
}

type Matcher = Arc<dyn Fn(&Input) -> bool + Send + Sync>;
type Respond = Arc<dyn Fn(&Input) -> Answer + Send + Sync>;

/// One recorded answer to the calls of one operation that `match_requests` accepts.
#[derive(Clone)]
pub struct Rule {
    matches: Matcher,
    respond: Respond,
    calls: Arc<AtomicUsize>,
}

impl Rule {
    /// How many calls this rule answered.
    pub fn num_calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// A rule for operation input `I`, output `O`, error `E`, waiting for its answer.
pub struct RuleBuilder<I, O, E> {
    matches: Matcher,
    types: PhantomData<fn() -> (I, O, E)>,
}

impl<I, O, E> RuleBuilder<I, O, E>
where
    I: fmt::Debug + Send + Sync + 'static,
    O: fmt::Debug + Send + Sync + 'static,
    E: std::error::Error + fmt::Debug + Send + Sync + 'static,
{
    pub fn new<F, R>(_input: impl Fn() -> I, _sent: impl Fn() -> F) -> Self
    where
        F: Future<Output = Result<O, aws_smithy_runtime_api::client::result::SdkError<E, R>>>,
    {
        RuleBuilder { matches: Arc::new(|i: &Input| i.downcast_ref::<I>().is_some()), types: PhantomData }
    }

    pub fn match_requests(mut self, accept: impl Fn(&I) -> bool + Send + Sync + 'static) -> Self {
        self.matches = Arc::new(move |i: &Input| i.downcast_ref::<I>().is_some_and(&accept));
        self
    }

    pub fn then_output(self, output: impl Fn() -> O + Send + Sync + 'static) -> Rule {
        self.answer(move |_| Answer::Output(Output::erase(output())))
    }

    pub fn then_compute_output(self, output: impl Fn(&I) -> O + Send + Sync + 'static) -> Rule {
        self.answer(move |i| Answer::Output(Output::erase(output(i.downcast_ref::<I>().expect("matched input")))))
    }

    pub fn then_error(self, error: impl Fn() -> E + Send + Sync + 'static) -> Rule {
        self.answer(move |_| Answer::Error(Error::erase(error())))
    }

    /// A raw HTTP answer, for errors the SDK models nothing for (S3's NoSuchTagSet).
    pub fn then_http_response(self, response: impl Fn() -> HttpResponse + Send + Sync + 'static) -> Rule {
        let response: Arc<dyn Fn() -> HttpResponse + Send + Sync> = Arc::new(response);
        self.answer(move |_| Answer::Http(response.clone()))
    }

    fn answer(self, respond: impl Fn(&Input) -> Answer + Send + Sync + 'static) -> Rule {
        Rule { matches: self.matches, respond: Arc::new(respond), calls: Default::default() }
    }
}

/// The interceptor that answers: it picks a rule before the request is serialized, hands a
/// raw HTTP answer to `Canned` through the request, and puts a modelled answer in place of
/// whatever `Canned`'s empty response was read as.
struct Answers {
    rules: Vec<Rule>,
    pending: Mutex<HashMap<usize, Answer>>,
}

impl fmt::Debug for Answers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Answers({} rules)", self.rules.len())
    }
}

/// Which pending answer belongs to the call in flight.
#[derive(Debug, Clone)]
struct AnswerId(usize);

impl Storable for AnswerId {
    type Storer = StoreReplace<Self>;
}

/// A raw HTTP answer travelling to `Canned` with the request.
#[derive(Clone)]
struct HttpAnswer(Arc<dyn Fn() -> HttpResponse + Send + Sync>);

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

impl Intercept for Answers {
    fn name(&self) -> &'static str {
        "Answers"
    }

    fn read_before_serialization(
        &self,
        context: &BeforeSerializationInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let input = context.input();
        let Some(rule) = self.rules.iter().find(|r| (r.matches)(input)) else {
            panic!("no recorded answer for {input:?}");
        };
        rule.calls.fetch_add(1, Ordering::SeqCst);
        let id = NEXT_ID.fetch_add(1, Ordering::SeqCst);
        self.pending.lock().unwrap().insert(id, (rule.respond)(input));
        cfg.interceptor_state().store_put(AnswerId(id));
        Ok(())
    }

    fn modify_before_transmit(
        &self,
        context: &mut BeforeTransmitInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(AnswerId(id)) = cfg.load::<AnswerId>() else { return Ok(()) };
        if let Some(Answer::Http(response)) = self.pending.lock().unwrap().get(id) {
            context.request_mut().add_extension(HttpAnswer(response.clone()));
        }
        Ok(())
    }

    fn modify_before_attempt_completion(
        &self,
        context: &mut FinalizerInterceptorContextMut<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(AnswerId(id)) = cfg.load::<AnswerId>() else { return Ok(()) };
        match self.pending.lock().unwrap().remove(id) {
            Some(Answer::Output(o)) => context.inner_mut().set_output_or_error(Ok(o)),
            Some(Answer::Error(e)) => context.inner_mut().set_output_or_error(Err(OrchestratorError::operation(e))),
            Some(Answer::Http(_)) | None => {}
        }
        Ok(())
    }
}

/// The HTTP client: the raw answer a rule chose, or an empty 200 that `Answers` replaces.
#[derive(Debug, Clone)]
struct Canned;

impl HttpConnector for Canned {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let response = match request.extension::<HttpAnswer>() {
            Some(HttpAnswer(answer)) => answer(),
            None => HttpResponse::new(200.try_into().expect("a valid status"), SdkBody::empty()),
        };
        HttpConnectorFuture::ready(Ok(response))
    }
}

impl HttpClient for Canned {
    fn http_connector(&self, _: &HttpConnectorSettings, _: &RuntimeComponents) -> SharedHttpConnector {
        SharedHttpConnector::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sns::operation as sns;

    #[tokio::test]
    #[should_panic(expected = "no recorded answer")]
    async fn a_call_without_a_recorded_answer_panics() {
        let aws = aws(&[]);
        let _ = aws.sns.list_topics().send().await;
    }

    #[tokio::test]
    async fn a_rule_answers_only_the_calls_it_matches() {
        let ours = mock!(aws_sdk_sns::Client::get_topic_attributes)
            .match_requests(|r| r.topic_arn() == Some("arn:ours"))
            .then_output(|| {
                sns::get_topic_attributes::GetTopicAttributesOutput::builder().attributes("Policy", "{}").build()
            });
        let aws = aws(&[&ours]);
        let got = aws.sns.get_topic_attributes().topic_arn("arn:ours").send().await.unwrap();
        assert_eq!(got.attributes().and_then(|a| a.get("Policy")).map(String::as_str), Some("{}"));
        assert_eq!(ours.num_calls(), 1);
    }
}
