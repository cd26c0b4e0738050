"""Alert delivery in the test emulator: the paths an alert takes in AWS, which moto 5.2.5
accepts as API calls but does not (or not fully) follow.

Test-only model fixes, installed by server.py with the other adaptations (`install()`); the
product code stays written for real AWS. Each path follows AWS's documented behaviour for the
calls ctguard makes:

* PutEvents -> the matching rules of that bus (moto's own event-pattern matcher decides the
  match) -> each target. moto 5.2.5 routes to SQS, log groups, archives and event buses, but
  an SNS target raises NotImplementedError (PutEvents answers HTTP 500), disabled rules and
  schedule-only rules still receive events, the input transformer's output is re-parsed as
  JSON (so a string template loses its quotes), and an event forwarded to another region's
  bus is rebuilt there with that region, a new id and a new time. Here:
  - only ENABLED rules with an event pattern match (AWS: a disabled rule matches nothing;
    a schedule rule is not matched against events);
  - an SNS target is published to, with no subject (EventBridge sets none);
  - the target input is the minified event, `Input`, `InputPath`, or the input transformer's
    output (`transform`), with the substitution rules of the EventBridge User Guide;
  - an event-bus target in another region or account receives the event unchanged (the
    original `region`, `account`, `id` and `time`), the input transformer not applied (AWS
    transforms input only for service and API-destination targets), and an event received
    from another bus is not forwarded again (AWS: "EventBridge can't route events received
    from a sender event bus to a third event bus");
  - every target invocation counts `Invocations`, each one that fails (the topic, queue or
    bus does not exist) `FailedInvocations`, and each matching rule `TriggeredRules`, in the
    AWS/Events namespace by `RuleName` (with `EventBusName` for a rule on a custom bus), as
    EventBridge reports them to CloudWatch.
* SetAlarmState -> when the state changes and the alarm's actions are enabled, each SNS action
  of the new state (AlarmActions, OKActions, InsufficientDataActions) receives the
  notification CloudWatch sends: the JSON document of "Schema of Amazon SNS notifications when
  alarms change state" (CloudWatch User Guide) and the subject `ALARM: "<name>" in <Region
  name>`. moto changes the state and runs no action.
* SNS publish -> each SQS subscription receives the SNS envelope (Type, MessageId, TopicArn,
  Subject when given, Message, Timestamp, SignatureVersion, Signature, SigningCertURL,
  UnsubscribeURL naming this subscription, MessageAttributes), or the bare message with
  `RawMessageDelivery` "true". moto 5.2.5 treats the string "false" as true, names a fixed
  subscription in UnsubscribeURL, and fails the whole Publish call when one subscription's
  queue is gone; here a failed delivery is dropped and counted in
  `NumberOfNotificationsFailed` (AWS/SNS, by `TopicName`), as SNS does, and every other
  subscription still receives the message.

Not modelled: IAM and resource policies (topic, queue, bus and key policies), KMS encryption,
delivery retries and dead-letter queues, and events AWS services generate themselves (only
PutEvents reaches the rules). Delivery is synchronous: the message is in the queue when the
call that caused it returns.
"""

from __future__ import annotations

import copy
import datetime as dt
import functools
import json
import logging
from typing import Any

log = logging.getLogger("ctguard-emulator.delivery")

# Rule states that match events; ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS also receives
# read-only management events from CloudTrail, which is irrelevant for PutEvents.
ENABLED_RULE_STATES = frozenset({"ENABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS"})

# An input-path variable that matched nothing: "that variable isn't created and won't appear
# in the output" (EventBridge User Guide, input transformation, common issues).
_MISSING = object()

# The SNS subject's documented maximum length.
SNS_SUBJECT_MAX = 100


def install() -> None:
    """Patches moto's EventBridge, CloudWatch and SNS models in this process."""
    _patch_events()
    _patch_alarm_actions()
    _patch_sns_to_sqs()


# ---------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------

def _count(account: str, region: str, namespace: str, metric: str, dimensions: dict[str, str]) -> None:
    """Adds 1 to a metric the way an AWS service reports its own (one datum, unit Count)."""
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[account][region].put_metric_data(namespace, [{
        "MetricName": metric,
        "Value": 1.0,
        "Unit": "Count",
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
    }])


def _iso_seconds(value: Any) -> str:
    """An event's `time`: ISO 8601, UTC, whole seconds, as EventBridge writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    else:
        moment = dt.datetime.fromtimestamp(float(value), tz=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(value: Any) -> float:
    if isinstance(value, (int, float)):
        return float(value)
    return dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


@functools.lru_cache(maxsize=None)
def _region_names() -> dict[str, str]:
    import botocore.session

    names = {}
    for partition in botocore.session.get_session().get_data("endpoints")["partitions"]:
        for code, region in partition["regions"].items():
            names[code] = region.get("description", code)
    return names


def region_name(code: str) -> str:
    """The Region's name as AWS writes it in notifications: "US East (N. Virginia)"."""
    return _region_names().get(code, code)


# ---------------------------------------------------------------------------
# EventBridge: PutEvents -> rules -> targets
# ---------------------------------------------------------------------------

def _patch_events() -> None:
    from moto.events.models import Rule

    moto_send = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input=True):  # noqa: ANN001, ANN202
        # Archive replays and S3 notifications keep moto's own routing.
        if not transform_input or "replay-name" in original_event:
            return moto_send(self, original_event, transform_input)
        # moto builds a fresh envelope for every rule: no copy needed.
        event = {k: v for k, v in original_event.items() if k != "ingestion-time"}
        event["time"] = _iso_seconds(event.get("time") or dt.datetime.now(dt.timezone.utc))
        ingestion = original_event.get("ingestion-time") or dt.datetime.now(dt.timezone.utc).timestamp()
        deliver_to_rule(self, event, float(ingestion), forwarded=False, moto_send=moto_send)

    Rule.send_to_targets = send_to_targets


def deliver_to_rule(rule: Any, event: dict, ingestion: float, forwarded: bool, moto_send: Any) -> None:
    """Delivers `event` (the envelope as EventBridge builds it) to every target of `rule`, if
    the rule is enabled and its pattern matches."""
    if rule.state not in ENABLED_RULE_STATES or rule.event_pattern.dump() is None:
        return
    if not rule.event_pattern.matches_event(event):  # moto's matcher, on a copy it makes
        return
    dims = _rule_dimensions(rule)
    _count(rule.account_id, rule.region_name, "AWS/Events", "TriggeredRules", dims)
    for target in list(rule.targets):
        if forwarded and _is_event_bus(target["Arn"]):
            log.info("rule %s: not forwarding an event that came from another bus", rule.arn)
            continue
        _count(rule.account_id, rule.region_name, "AWS/Events", "Invocations", dims)
        try:
            _invoke(rule, target, event, ingestion, moto_send)
        except Exception as exc:  # noqa: BLE001 - any failure is a failed invocation
            log.warning("rule %s: target %s failed: %s: %s", rule.arn, target["Arn"], type(exc).__name__, exc)
            _count(rule.account_id, rule.region_name, "AWS/Events", "FailedInvocations", dims)


def _rule_dimensions(rule: Any) -> dict[str, str]:
    """A rule's metric dimensions: RuleName on the default bus, EventBusName and RuleName on a
    custom one (EventBridge User Guide, "Monitoring Amazon EventBridge")."""
    bus = getattr(rule, "event_bus_name", "default") or "default"
    return {"RuleName": rule.name} if bus == "default" else {"EventBusName": bus, "RuleName": rule.name}


def _is_event_bus(arn: str) -> bool:
    from moto.utilities.arns import parse_arn

    parsed = parse_arn(arn)
    return parsed.service == "events" and parsed.resource_type == "event-bus"


def _invoke(rule: Any, target: dict, event: dict, ingestion: float, moto_send: Any) -> None:
    from moto.utilities.arns import parse_arn

    arn = parse_arn(target["Arn"])
    if arn.service == "events" and arn.resource_type == "event-bus":
        _forward(arn, event, ingestion, moto_send)
    elif arn.service == "sns":
        from moto.sns.models import sns_backends

        body = target_input(rule, target, event, ingestion)
        sns_backends[arn.account][arn.region].publish(body, arn=target["Arn"])
    elif arn.service == "sqs":
        from moto.sqs.models import sqs_backends

        body = target_input(rule, target, event, ingestion)
        group_id = (target.get("SqsParameters") or {}).get("MessageGroupId")
        sqs_backends[arn.account][arn.region].send_message(arn.resource_id, body, group_id=group_id)
    else:
        # Log groups, archives, API destinations: moto's own delivery, for this target only,
        # on the event in the shape moto builds (epoch-second times).
        only_this = copy.copy(rule)
        only_this.targets = [target]
        moto_event = dict(copy.deepcopy(event), time=_epoch(event["time"]))
        moto_event["ingestion-time"] = ingestion
        moto_send(only_this, moto_event)


def _forward(arn: Any, event: dict, ingestion: float, moto_send: Any) -> None:
    """An event-bus target: the event arrives on that bus as it was, with its own region,
    account, id and time (EventBridge User Guide, sending events between Regions)."""
    from moto.events.models import events_backends

    backend = events_backends[arn.account][arn.region]
    bus = backend.event_buses.get(arn.resource_id)
    if bus is None:
        raise LookupError(f"event bus {arn.resource_id} does not exist in {arn.account}/{arn.region}")
    for rule in list(bus.rules.values()):
        deliver_to_rule(rule, copy.deepcopy(event), ingestion, forwarded=True, moto_send=moto_send)


def target_input(rule: Any, target: dict, event: dict, ingestion: float) -> str:
    """What a service target receives: the input transformer's output, the constant `Input`,
    the part of the event `InputPath` selects, or else the whole event, minified."""
    transformer = target.get("InputTransformer")
    if transformer:
        return transform(transformer, event, rule_arn=rule.arn, rule_name=rule.name, ingestion=ingestion)
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        value = _json_path(target["InputPath"], event)
        return _minified(None if value is _MISSING else value)
    return _minified(event)


def _minified(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=256)
def _compiled_path(path: str):  # noqa: ANN202
    from jsonpath_ng.ext import parse

    return parse(path)


def _json_path(path: str, event: dict) -> Any:
    """The value at `path`; a path with a wildcard that matches several gives them as a list."""
    try:
        found = [m.value for m in _compiled_path(path).find(event)]
    except Exception:  # noqa: BLE001 - EventBridge does not validate paths: no value
        return _MISSING
    if not found:
        return _MISSING
    return found[0] if len(found) == 1 else found


def transform(transformer: dict, event: dict, rule_arn: str, rule_name: str, ingestion: float) -> str:
    """An input transformer's output, following "Amazon EventBridge input transformation"
    (EventBridge User Guide): each `<name>` of InputPathsMap or of the predefined variables is
    replaced; a string value is inserted as is inside a quoted JSON string and with quotes
    added elsewhere, never escaped; an object or array is inserted as JSON, with its quotes
    removed inside a string; a path that matches nothing leaves nothing. An output that is a
    JSON object or array reaches the target minified; any other output, such as a quoted
    string template, is sent as the text it is (quotes included)."""
    template = transformer.get("InputTemplate") or ""
    variables: dict[str, Any] = {
        name: _json_path(path, event) for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    variables.update({
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule_name,
        "aws.events.event.ingestion-time": _iso_seconds(ingestion),
        "aws.events.event": {k: v for k, v in event.items() if k != "detail"},
        "aws.events.event.json": event,
    })
    out: list[str] = []
    in_string = False
    i = 0
    while i < len(template):
        c = template[i]
        if c == "<":
            end = template.find(">", i + 1)
            name = template[i + 1:end] if end != -1 else None
            if name in variables:
                out.append(_substitute(variables[name], in_string))
                i = end + 1
                continue
        if in_string and c == "\\" and i + 1 < len(template):
            out.append(template[i:i + 2])
            i += 2
            continue
        if c == '"':
            in_string = not in_string
        out.append(c)
        i += 1
    text = "".join(out)
    if text.strip()[:1] in ("{", "["):
        try:
            return _minified(json.loads(text))
        except ValueError:
            pass
    return text


def _substitute(value: Any, in_string: bool) -> str:
    if value is _MISSING:
        return ""
    if isinstance(value, str):
        return value if in_string else f'"{value}"'
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if in_string and isinstance(value, (dict, list)):
        return text.replace('"', "")
    return text


# ---------------------------------------------------------------------------
# CloudWatch: SetAlarmState -> alarm actions
# ---------------------------------------------------------------------------

def _patch_alarm_actions() -> None:
    from moto.cloudwatch.models import CloudWatchBackend

    moto_set_state = CloudWatchBackend.set_alarm_state

    def set_alarm_state(self, alarm_name, reason, reason_data, state_value):  # noqa: ANN001, ANN202
        alarm = self.alarms.get(alarm_name)
        old_state = alarm.state_value if alarm is not None else None
        moto_set_state(self, alarm_name, reason, reason_data, state_value)
        # "When the updated state differs from the previous value, the action configured for
        # the appropriate state is invoked" (SetAlarmState, CloudWatch API Reference).
        if alarm is not None and old_state != state_value:
            run_alarm_actions(self, alarm, old_state)

    CloudWatchBackend.set_alarm_state = set_alarm_state


def run_alarm_actions(backend: Any, alarm: Any, old_state: str) -> None:
    if not alarm.actions_enabled:
        log.info("alarm %s: actions disabled, nothing sent", alarm.name)
        return
    actions = {
        "ALARM": alarm.alarm_actions,
        "OK": alarm.ok_actions,
        "INSUFFICIENT_DATA": alarm.insufficient_data_actions,
    }.get(alarm.state_value) or []
    from moto.sns.models import sns_backends
    from moto.utilities.arns import parse_arn

    message = json.dumps(alarm_notification(backend.account_id, alarm, old_state))
    subject = f'{alarm.state_value}: "{alarm.name}" in {region_name(alarm.region_name)}'[:SNS_SUBJECT_MAX]
    for action in actions:
        arn = parse_arn(action)
        if arn.service != "sns":
            log.info("alarm %s: action %s is not modelled", alarm.name, action)
            continue
        try:
            sns_backends[arn.account][arn.region].publish(message, arn=action, subject=subject)
        except Exception as exc:  # noqa: BLE001 - AWS records it in the alarm history and goes on
            log.warning("alarm %s: failed to execute action %s: %s", alarm.name, action, exc)


def _cloudwatch_time(value: dt.datetime) -> str:
    moment = value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"


def alarm_notification(account: str, alarm: Any, old_state: str) -> dict:
    """The message CloudWatch publishes to an SNS action: "Schema of Amazon SNS notifications
    when alarms change state" (CloudWatch User Guide, notifying users on alarm changes)."""
    common = {
        "AlarmName": alarm.name,
        "AlarmDescription": alarm.description or None,
        "AWSAccountId": account,
    }
    state = {
        "NewStateValue": alarm.state_value,
        "NewStateReason": alarm.state_reason,
        "StateChangeTime": _cloudwatch_time(alarm.state_updated_timestamp),
        "Region": region_name(alarm.region_name),
        "AlarmArn": alarm.alarm_arn,
    }
    actions = {
        "OKActions": list(alarm.ok_actions or []),
        "AlarmActions": list(alarm.alarm_actions or []),
        "InsufficientDataActions": list(alarm.insufficient_data_actions or []),
    }
    if alarm.rule:  # a composite alarm
        return {**common, **state, **actions, "OldStateValue": old_state, "AlarmRule": alarm.rule,
                "TriggeringChildren": []}
    return {
        **common,
        "AlarmConfigurationUpdatedTimestamp": _cloudwatch_time(alarm.configuration_updated_timestamp),
        **state,
        "OldStateValue": old_state,
        **actions,
        "Trigger": _trigger(alarm),
    }


def _trigger(alarm: Any) -> dict:
    trigger: dict[str, Any] = {}
    if alarm.metric_data_queries:
        trigger["Metrics"] = [_query(q) for q in alarm.metric_data_queries]
    else:
        extended = alarm.extended_statistic
        trigger.update({
            "MetricName": alarm.metric_name,
            "Namespace": alarm.namespace,
            "StatisticType": "ExtendedStatistic" if extended else "Statistic",
            "Statistic": extended if extended else (alarm.statistic or "").upper(),
            "Unit": alarm.unit,
            "Dimensions": [{"value": d.value, "name": d.name} for d in alarm.dimensions],
            "Period": int(alarm.period) if alarm.period is not None else None,
        })
    trigger.update({
        "EvaluationPeriods": int(alarm.evaluation_periods),
        "DatapointsToAlarm": int(alarm.datapoints_to_alarm or alarm.evaluation_periods),
        "ComparisonOperator": alarm.comparison_operator,
        "Threshold": float(alarm.threshold) if alarm.threshold is not None else None,
        "TreatMissingData": alarm.treat_missing_data or "missing",
        "EvaluateLowSampleCountPercentile": alarm.evaluate_low_sample_count_percentile or "",
    })
    return trigger


def _query(query: Any) -> dict:
    out: dict[str, Any] = {"Id": query.id, "ReturnData": str(query.return_data).lower() != "false"}
    if query.label:
        out["Label"] = query.label
    if query.expression:
        out["Expression"] = query.expression
    stat = query.metric_stat
    if stat is not None:
        metric = stat.metric
        out["MetricStat"] = {
            "Metric": {
                "Namespace": metric.namespace,
                "MetricName": metric.metric_name,
                "Dimensions": [{"value": d.value, "name": d.name} for d in (metric.dimensions or [])],
            },
            "Period": int(stat.period),
            "Stat": stat.stat,
        }
    return out


# ---------------------------------------------------------------------------
# SNS: publish -> SQS subscriptions
# ---------------------------------------------------------------------------

# The envelope's members in the order SNS writes them.
ENVELOPE_ORDER = ("Type", "MessageId", "TopicArn", "Subject", "Message", "Timestamp", "SignatureVersion",
                  "Signature", "SigningCertURL", "UnsubscribeURL", "MessageAttributes")


def _patch_sns_to_sqs() -> None:
    from moto.sns.models import Subscription

    moto_publish = Subscription.publish

    def publish(self, message, message_id, subject=None, message_attributes=None, group_id=None,  # noqa: ANN001, ANN202
                deduplication_id=None, message_structure=None):
        topic = self.topic
        try:
            if self.protocol == "sqs":
                _deliver_to_queue(self, message, message_id, subject, message_attributes, group_id,
                                  deduplication_id, message_structure)
            else:
                moto_publish(self, message, message_id, subject=subject, message_attributes=message_attributes,
                             group_id=group_id, deduplication_id=deduplication_id,
                             message_structure=message_structure)
        except Exception as exc:  # noqa: BLE001 - one endpoint failing does not fail the Publish
            log.warning("subscription %s: delivery failed: %s: %s", self.arn, type(exc).__name__, exc)
            _count(topic.account_id, topic.sns_backend.region_name, "AWS/SNS", "NumberOfNotificationsFailed",
                   {"TopicName": topic.name})
            return
        _count(topic.account_id, topic.sns_backend.region_name, "AWS/SNS", "NumberOfNotificationsDelivered",
               {"TopicName": topic.name})

    Subscription.publish = publish


def _deliver_to_queue(sub: Any, message: str, message_id: str, subject: str | None,
                      message_attributes: dict | None, group_id: str | None, deduplication_id: str | None,
                      message_structure: str | None) -> None:
    from moto.sqs.models import sqs_backends
    from moto.utilities.arns import parse_arn

    if sub._filter_policy_matcher is not None and not sub._filter_policy_matcher.matches(message_attributes, message):
        return
    if message_structure == "json":
        message = sub._parse_message_structure(message, "sqs")
    queue = parse_arn(sub.endpoint)
    backend = sqs_backends[queue.account][queue.region]
    if str(sub.attributes.get("RawMessageDelivery", "false")).lower() == "true":
        backend.send_message(queue.resource_id, message, message_attributes=_raw_attributes(message_attributes),
                             deduplication_id=deduplication_id, group_id=group_id, validate_group_id=False)
        return
    posted = sub.get_post_data(message, message_id, subject, message_attributes=message_attributes)
    region = sub.topic.sns_backend.region_name
    posted["UnsubscribeURL"] = f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe&SubscriptionArn={sub.arn}"
    envelope = {k: posted[k] for k in ENVELOPE_ORDER if k in posted}
    body = json.dumps(envelope, indent=2, separators=(",", " : "), ensure_ascii=False)
    backend.send_message(queue.resource_id, body, deduplication_id=deduplication_id, group_id=group_id,
                         validate_group_id=False)


def _raw_attributes(message_attributes: dict | None) -> dict:
    """SNS message attributes as SQS message attributes, for raw delivery."""
    out = {}
    for name, value in (message_attributes or {}).items():
        kind = value["Type"]
        if kind.startswith("Binary"):
            out[name] = {"DataType": kind, "BinaryValue": value["Value"]}
        else:
            out[name] = {"DataType": kind, "StringValue": str(value["Value"])}
    return out
