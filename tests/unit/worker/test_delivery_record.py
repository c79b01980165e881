"""The outbox's fast record is the Delivery model's own JSON, field for field."""

import orjson

from statemachine.models import Transition
from statemachine.status import ObjectKind, Origin
from statemachine.webhooks import delivery_id, payload
from worker.store.outbox import Delivery
from worker.store.subscriptions import Subscription


def test_new_json_is_the_models_json_and_reads_back_as_a_pending_delivery() -> None:
    subscription = Subscription(account="acct_1", url="https://hooks.example.com/x", events=["run.*"])
    transition = Transition(
        n=3,
        object=ObjectKind.RUN,
        id="r1",
        run_id="r1",
        from_="running",
        to="completed",
        event_id="e3",
        event_type="run.completed",
        origin=Origin.EVENT,
        at=1_764_064_807_000,
        applied_at=1_764_064_807_012,
    )
    body = payload(transition, "acct_1")
    d_id = delivery_id(subscription.id, transition, 1_764_064_800_000)

    fast = Delivery.new_json(d_id, subscription, orjson.dumps(body).decode(), 1_764_064_807_020)

    model = Delivery(
        id=d_id,
        subscription_id=subscription.id,
        account=subscription.account,
        payload=orjson.dumps(body).decode(),
        created_at=1_764_064_807_020,
    )
    assert fast == model.to_json()
    assert (body["data"]["account_id"], body["data"]["run_id"]) == ("acct_1", "r1")  # type: ignore[index]
    assert Delivery.model_validate_json(fast).payload == orjson.dumps(body).decode()
