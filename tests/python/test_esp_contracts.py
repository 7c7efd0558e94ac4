"""Every request an adapter sends and every answer its sandbox gives, checked against the
provider's own definition of the endpoint (see esp_contracts.py): the official SDK's
typed models for HubSpot and Klaviyo, the published API reference for the others. Each
provider's scenario drives every call its adapter makes; a table entry no scenario
reaches, or an exchange no entry covers, fails."""

from __future__ import annotations

import re

import httpx
import pytest

from esp_contracts import Endpoint, check_exchanges, hubspot_problems, recording
from segwise.sync.destinations.base import Contact
from segwise.sync.destinations.hubspot import HubSpotDestination
from segwise.sync.sandboxes import hubspot
from segwise.sync.sandboxes.common import SandboxServer

pytestmark = pytest.mark.xdist_group("contracts")

KEY = "contract-key-0000"
CONTACTS = "hubspot.crm.contacts:"
LISTS = "hubspot.crm.lists:"
HUBSPOT_DOCS = "developers.hubspot.com/docs/api-reference"

# The v4 communication-preferences endpoints are not in hubspot-api-client 12 (it has v3):
# their shapes as the API reference shows them (legacy/communication-preferences, status
# and batch pages: BatchResponsePublicStatus of PublicStatus).
PUBLIC_STATUS_REQUIRED = {"channel", "source", "status", "subscriberIdString",
                          "subscriptionId", "timestamp"}
PUBLIC_STATUS_FIELDS = PUBLIC_STATUS_REQUIRED | {
    "businessUnitId", "legalBasis", "legalBasisExplanation", "setStatusSuccessReason",
    "subscriptionName"}
BATCH_STATUS_REQUIRED = {"completedAt", "startedAt", "status", "results"}
BATCH_STATUS_FIELDS = BATCH_STATUS_REQUIRED | {"requestedAt", "links", "errors", "numErrors"}

PROPERTIES = "hubspot.crm.properties:"
# personal fields every scenario sends: one of each kind
FIELDS = {"rfm_segment": "string", "monetary_total": "numeric", "is_wholesale": "boolean",
          "last_order_at": "temporal"}
TRAITS = [{"rfm_segment": "Champions", "monetary_total": 120.5, "is_wholesale": True,
           "last_order_at": "2026-06-01T10:00:00"},
          {"rfm_segment": None, "monetary_total": 3, "is_wholesale": False,
           "last_order_at": None}]


def _people(names: dict | None = None) -> list:
    """Five contacts (every other one with a name, each with personal fields) and one
    address no provider takes."""
    names = names or {"first_name": "Ann"}
    return [Contact(f"c{i}", f"p{i}@example.com", names if i % 2 else {}, TRAITS[i % 2])
            for i in range(5)] + [Contact("bad", "not-an-email", {}, TRAITS[1])]


def _check_provider(create_app, scenario, endpoints: list, problems_of) -> None:
    """Run a provider's scenario against its sandbox: every exchange fits its contract
    and every endpoint of the table was reached."""
    with SandboxServer(create_app(KEY)) as server:
        seen = scenario(server.url)
    problems, covered = check_exchanges(seen, endpoints, problems_of)
    assert problems == []
    assert covered == {f"{e.method} {e.path}" for e in endpoints}, "an endpoint went untested"


HUBSPOT = [
    Endpoint("GET", r"/crm/v3/properties/contacts/groups", None,
             {200: PROPERTIES + "CollectionResponsePropertyGroupNoPaging"},
             "hubspot-api-client: crm.properties GroupsApi.get_all"),
    Endpoint("POST", r"/crm/v3/properties/contacts/groups", PROPERTIES + "PropertyGroupCreate",
             {201: PROPERTIES + "PropertyGroup"},
             "hubspot-api-client: crm.properties GroupsApi.create"),
    Endpoint("GET", r"/crm/v3/properties/contacts", None,
             {200: PROPERTIES + "CollectionResponsePropertyNoPaging"},
             "hubspot-api-client: crm.properties CoreApi.get_all"),
    Endpoint("POST", r"/crm/v3/properties/contacts", PROPERTIES + "PropertyCreate",
             {201: PROPERTIES + "ModelProperty"},
             "hubspot-api-client: crm.properties CoreApi.create"),
    Endpoint("POST", r"/crm/v3/objects/contacts/batch/upsert",
             CONTACTS + "BatchInputSimplePublicObjectBatchInputUpsert",
             {200: CONTACTS + "BatchResponseSimplePublicUpsertObject",
              207: CONTACTS + "BatchResponseSimplePublicUpsertObjectWithErrors"},
             "hubspot-api-client: crm.contacts BatchApi.upsert"),
    Endpoint("POST", r"/crm/v3/objects/contacts/batch/read",
             CONTACTS + "BatchReadInputSimplePublicObjectId",
             {200: CONTACTS + "BatchResponseSimplePublicObject",
              207: CONTACTS + "BatchResponseSimplePublicObjectWithErrors"},
             "hubspot-api-client: crm.contacts BatchApi.read"),
    Endpoint("POST", r"/crm/v3/objects/contacts/gdpr-delete",
             CONTACTS + "PublicGdprDeleteInput", {204: None},
             "hubspot-api-client: crm.contacts GDPRApi.purge"),
    Endpoint("GET", r"/crm/v3/lists/object-type-id/0-1/name/[^/]+", None,
             {200: LISTS + "ListFetchResponse", 404: LISTS + "Error"},
             "hubspot-api-client: crm.lists ListsApi.get_by_name"),
    Endpoint("POST", r"/crm/v3/lists", LISTS + "ListCreateRequest",
             {200: LISTS + "ListCreateResponse", 409: LISTS + "Error"},
             "hubspot-api-client: crm.lists ListsApi.create"),
    Endpoint("PUT", r"/crm/v3/lists/\d+/memberships/(add|remove)", "list[str]",
             {200: LISTS + "MembershipsUpdateResponse"},
             "hubspot-api-client: crm.lists MembershipsApi.add / remove"),
    Endpoint("POST", r"/communication-preferences/v4/statuses/[^/]+/unsubscribe-all", None,
             {200: "v4:BatchResponsePublicStatus"},
             f"{HUBSPOT_DOCS}/legacy/communication-preferences (unsubscribe-all)"),
]


def _v4_problems(data) -> list[str]:
    if not isinstance(data, dict):
        return ["$: expected an object"]
    problems = [f"$: missing {sorted(BATCH_STATUS_REQUIRED - set(data))}"] if (
        BATCH_STATUS_REQUIRED - set(data)) else []
    problems += [f"$: {k!r} is not a field of BatchResponsePublicStatus"
                 for k in set(data) - BATCH_STATUS_FIELDS]
    for i, status in enumerate(data.get("results") or []):
        missing = PUBLIC_STATUS_REQUIRED - set(status)
        extra = set(status) - PUBLIC_STATUS_FIELDS
        if missing:
            problems.append(f"$.results[{i}]: missing {sorted(missing)}")
        problems += [f"$.results[{i}]: {k!r} is not a field of PublicStatus" for k in extra]
    return problems


def hubspot_model_problems(model: str, data) -> list[str]:
    if model.startswith("v4:"):
        return _v4_problems(data)
    if ":" not in model:  # a bare type, e.g. the membership body (list[str])
        return hubspot_problems(model, data, "hubspot.crm.lists")
    package, name = model.split(":")
    return hubspot_problems(name, data, package)


def test_the_oracle_catches_a_renamed_or_missing_field():
    """The check itself can fail: the field-name swap #10 found, a missing required field
    and a wrong type are each reported."""
    swapped = {"recordIdsAdded": ["1"], "recordsIdsMissing": []}
    assert hubspot_model_problems(LISTS + "MembershipsUpdateResponse", swapped)
    fine = {"recordsIdsAdded": ["1"], "recordIdsMissing": [], "recordIdsRemoved": []}
    assert hubspot_model_problems(LISTS + "MembershipsUpdateResponse", fine) == []
    no_name = {"objectTypeId": "0-1", "processingType": "MANUAL"}
    assert any("name" in p for p in hubspot_model_problems(LISTS + "ListCreateRequest",
                                                           no_name))
    wrong = {"inputs": [{"idProperty": "email", "id": "a@x.io", "properties": {"n": 1}}]}
    assert hubspot_model_problems(
        CONTACTS + "BatchInputSimplePublicObjectBatchInputUpsert", wrong)


def _hubspot_scenario(url: str) -> list:
    people = _people({"first_name": "Ann", "last_name": "Lee"})
    httpx.post(f"{url}/_sandbox/contacts", json={"email": "p2@example.com", "optout": True})
    first = HubSpotDestination(url, KEY)
    fresh = HubSpotDestination(url, KEY)
    with recording(first, fresh) as seen:
        first.prepare("vip customers")  # looked up (404), then created
        first.prepare_fields(FIELDS)
        first.upsert_contacts(people)  # 207: one invalid address
        first.add_to_list("vip customers", people[:5])
        fresh.prepare("vip customers")  # a new process finds it (200)
        fresh.remove_from_list("vip customers", [people[0], Contact("x", "ghost@example.com")])
        first.unsubscribe(people[4:5])
        first.erase([people[3].email, "nobody@example.com"])
    return seen


def test_hubspot_calls_and_answers_match_the_sdk_models():
    _check_provider(hubspot.create_app, _hubspot_scenario, HUBSPOT, hubspot_model_problems)


# ------------------------------------------------------------------ Klaviyo
KLAVIYO_SDK = "klaviyo-api 25 (revision 2026-10-15)"
KLAVIYO = [
    Endpoint("POST", r"/api/profile-bulk-import-jobs", "ProfileImportJobCreateQuery",
             {202: "PostProfileImportJobResponse"},
             f"{KLAVIYO_SDK}: ProfilesApi.bulk_import_profiles"),
    Endpoint("GET", r"/api/profile-bulk-import-jobs/[^/]+", None,
             {200: "GetProfileImportJobResponseCompoundDocument"},
             f"{KLAVIYO_SDK}: ProfilesApi.get_bulk_import_profiles_job"),
    Endpoint("GET", r"/api/profile-bulk-import-jobs/[^/]+/import-errors", None,
             {200: "GetImportErrorResponseCollection"},
             f"{KLAVIYO_SDK}: ProfilesApi.get_errors_for_bulk_import_profiles_job"),
    Endpoint("GET", r"/api/profiles", None,
             {200: "GetProfileResponsePluralConversationsCollectionCompoundDocument"},
             f"{KLAVIYO_SDK}: ProfilesApi.get_profiles"),
    Endpoint("GET", r"/api/lists", None,
             {200: "GetListListResponseCollectionCompoundDocument"},
             f"{KLAVIYO_SDK}: ListsApi.get_lists"),
    Endpoint("POST", r"/api/lists", "ListCreateQuery", {201: "PostListCreateResponse"},
             f"{KLAVIYO_SDK}: ListsApi.create_list"),
    Endpoint("POST", r"/api/lists/[^/]+/relationships/profiles", "ListMembersAddQuery",
             {204: None}, f"{KLAVIYO_SDK}: ListsApi.add_profiles_to_list"),
    Endpoint("DELETE", r"/api/lists/[^/]+/relationships/profiles", "ListMembersDeleteQuery",
             {204: None}, f"{KLAVIYO_SDK}: ListsApi.remove_profiles_from_list"),
    Endpoint("POST", r"/api/profile-subscription-bulk-delete-jobs",
             "SubscriptionDeleteJobCreateQuery", {202: None},
             f"{KLAVIYO_SDK}: ProfilesApi.bulk_unsubscribe_profiles"),
    Endpoint("POST", r"/api/data-privacy-deletion-jobs", "DataPrivacyCreateDeletionJobQuery",
             {202: None}, f"{KLAVIYO_SDK}: DataPrivacyApi.request_profile_deletion"),
]


def klaviyo_model_problems(model: str, data) -> list[str]:
    from esp_contracts import klaviyo_problems

    return klaviyo_problems(model, data)


def test_the_klaviyo_oracle_catches_a_renamed_or_missing_field():
    good = {"data": {"type": "list", "attributes": {"name": "vip"}}}
    assert klaviyo_model_problems("ListCreateQuery", good) == []
    assert klaviyo_model_problems("ListCreateQuery", {"data": {"type": "list",
                                                              "attributes": {"nam": "vip"}}})
    assert klaviyo_model_problems("ListCreateQuery", {"data": {"type": "lists",
                                                              "attributes": {"name": "v"}}})


def _klaviyo_scenario(url: str) -> list:
    from segwise.sync.destinations.klaviyo import KlaviyoDestination

    people = _people()
    for i in range(12):  # more lists than one page of GET /api/lists holds
        httpx.post(f"{url}/_sandbox/lists", json={"name": f"other list {i}"})
    first = KlaviyoDestination(url, KEY)
    fresh = KlaviyoDestination(url, KEY)
    with recording(first, fresh) as seen:
        first.prepare("vip customers")
        first.prepare_fields(FIELDS)
        first.upsert_contacts(people)
        first.add_to_list("vip customers", people[:5])
        fresh.prepare("vip customers")
        fresh.remove_from_list("vip customers", people[:2])
        first.unsubscribe(people[4:5])
        first.erase([people[3].email])
    return seen


def test_klaviyo_calls_and_answers_match_the_sdk_models():
    from segwise.sync.sandboxes import klaviyo

    _check_provider(klaviyo.create_app, _klaviyo_scenario, KLAVIYO, klaviyo_model_problems)


def _published_limits(sdk_method: str) -> tuple[tuple[int, float], ...]:
    """The burst and steady windows the SDK's docstring for the endpoint publishes
    (``Burst: `10/s` Steady: `150/m```)."""
    import importlib
    import re

    api, method = sdk_method.split(".")
    module = importlib.import_module(
        "openapi_client.api." + re.sub(r"(?<!^)(?=[A-Z])", "_", api).lower().replace(
            "_api", "") + "_api")
    doc = getattr(getattr(module, api), method).__doc__
    burst, steady = re.search(r"Burst: `(\d+)/s`<br>Steady: `(\d+)/m`", doc).groups()
    return ((int(burst), 1.0), (int(steady), 60.0))


def test_klaviyo_rate_limits_are_the_published_ones():
    """Per endpoint, the adapter paces to the limits the SDK publishes (never faster) and
    the sandbox enforces exactly them."""
    from segwise.sync.destinations.klaviyo import KlaviyoDestination
    from segwise.sync.sandboxes import klaviyo

    d = KlaviyoDestination("http://127.0.0.1:9", KEY)
    for e in KLAVIYO:
        published = _published_limits(e.source.split(": ")[1])
        sample = re.sub(r"\[\^/\]\+", "X1", e.path).replace("(add|remove)", "add")
        key = d.rate_key(e.method, sample)
        mine = d.rate_limits_for(key)
        assert all(m[0] <= p[0] for m, p in zip(mine, published, strict=True)), (key, mine)
        enforced = klaviyo.ENDPOINT_LIMITS.get(klaviyo.endpoint_key(e.method, sample),
                                               klaviyo.DEFAULT_LIMITS)
        assert enforced == published, (key, enforced, published)


# ------------------------------------------------------------------ SendGrid
SG_OAI = "github.com/twilio/sendgrid-oai spec/json"
SENDGRID = [
    Endpoint("GET", r"/v3/marketing/field_definitions", None, {200: "FieldDefinitions"},
             f"{SG_OAI}/tsg_mc_custom_fields_v3.json ListFieldDefinition"),
    Endpoint("POST", r"/v3/marketing/field_definitions", "FieldDefinitionIn",
             {200: "FieldDefinition"},
             f"{SG_OAI}/tsg_mc_custom_fields_v3.json CreateFieldDefinition"),
    Endpoint("PUT", r"/v3/marketing/contacts", "UpsertContacts",
             {202: "JobId"}, f"{SG_OAI}/tsg_mc_contacts_v3.json UpdateContact"),
    Endpoint("GET", r"/v3/marketing/contacts/imports/[^/]+", None, {200: "ImportStatus"},
             f"{SG_OAI}/tsg_mc_contacts_v3.json GetImportContact"),
    Endpoint("GET", r"/v3/marketing/contacts/imports/[^/]+/errors", None, {200: "csv"},
             "the errors_url of an errored job: a file of the failed addresses and their "
             "reasons (support.sendgrid.com 'Unable to Upload Contacts'; columns not "
             "published, so only an email column is required)"),
    Endpoint("POST", r"/v3/marketing/contacts/search/emails", "SearchEmails",
             {200: "SearchResult", 404: "Errors"},
             f"{SG_OAI}/tsg_mc_contacts_v3.json ListContactByEmail"),
    Endpoint("DELETE", r"/v3/marketing/contacts", None, {202: "DeleteJob"},
             f"{SG_OAI}/tsg_mc_contacts_v3.json DeleteContact"),
    Endpoint("GET", r"/v3/marketing/lists", None, {200: "Lists"},
             f"{SG_OAI}/tsg_mc_lists_v3.json ListMarketingList"),
    Endpoint("POST", r"/v3/marketing/lists", "CreateList", {201: "ListOut"},
             f"{SG_OAI}/tsg_mc_lists_v3.json CreateMarketingList"),
    Endpoint("DELETE", r"/v3/marketing/lists/[^/]+/contacts", None,
             {202: "JobId", 404: "Errors"}, f"{SG_OAI}/tsg_mc_lists_v3.json DeleteContact"),
    Endpoint("GET", r"/v3/suppression/unsubscribes", None, {200: "Unsubscribes"},
             f"{SG_OAI}/tsg_suppressions_v3.json ListGlobalSuppression"),
    Endpoint("GET", r"/v3/suppression/bounces", None, {200: "Bounces"},
             f"{SG_OAI}/tsg_suppressions_v3.json ListSuppressionBounces"),
    Endpoint("GET", r"/v3/suppression/spam_reports", None, {200: "SpamReports"},
             f"{SG_OAI}/tsg_suppressions_v3.json ListSpamReport"),
    Endpoint("GET", r"/v3/asm/suppressions", None, {200: "GroupSuppressions"},
             f"{SG_OAI}/tsg_suppressions_v3.json ListAsmSuppression"),
    Endpoint("POST", r"/v3/asm/suppressions/global", "GlobalSuppressions",
             {201: "GlobalSuppressions"},
             f"{SG_OAI}/tsg_suppressions_v3.json CreateGlobalSuppression"),
]


def shape_problems(shapes: dict, model: str, data) -> list[str]:
    """Validate ``data`` against a hand-written strict pydantic shape."""
    from pydantic import ValidationError

    if model == "csv":
        text = (data or {}).get("__not_json__", "") if isinstance(data, dict) else ""
        header = text.splitlines()[0].lower() if text else ""
        return [] if "email" in header else [f"$: not a CSV with an email column: {text!r}"]
    try:
        shapes[model].model_validate(data)
    except ValidationError as exc:
        return [f"$: {model}: {e['loc']} {e['msg']}" for e in exc.errors()]
    return []


def sendgrid_model_problems(model: str, data) -> list[str]:
    from esp_shapes_sendgrid import SHAPES

    return shape_problems(SHAPES, model, data)


def test_the_sendgrid_shapes_catch_what_issue_10_found():
    unknown = {"result": {"ghost@x.io": {"error": "contact not found"}}}
    assert sendgrid_model_problems("SearchResult", unknown) == []
    assert sendgrid_model_problems("SearchResult", {"result": {"a@x.io": {"contact": {
        "id": "1", "email": "a@x.io"}}}})  # list_ids, segment_ids, dates are required
    assert sendgrid_model_problems("ImportStatus", {"status": "partial"})
    assert sendgrid_model_problems("UpsertContacts", {"contacts": [{"email": "a@x.io",
                                                                    "firstname": "A"}]})


def _sendgrid_scenario(url: str) -> list:
    from segwise.sync.destinations.sendgrid import SendGridDestination

    people = _people()
    for kind in ("unsubscribe", "bounce", "spam", "group"):
        httpx.post(f"{url}/_sandbox/unsubscribes", json={"kind": kind,
                                                        "email": f"{kind}@example.com"})
    first = SendGridDestination(url, KEY)
    fresh = SendGridDestination(url, KEY)
    with recording(first, fresh) as seen:
        first.prepare("vip customers")
        first.prepare_fields(FIELDS)
        first.upsert_contacts(people)
        first.add_to_list("vip customers", people)  # an errored job: one bad address
        httpx.post(f"{url}/_sandbox/contacts/delete", json={"email": people[1].email})
        fresh.prepare("vip customers")
        fresh.remove_from_list("vip customers", [people[0], Contact("x", "ghost@example.com")])
        fresh.remove_from_list("vip customers", [people[2]])
        httpx.post(f"{url}/_sandbox/contacts/delete", json={"email": people[2].email})
        first.unsubscribe(people[4:5])
        first.erase([people[3].email, "nobody@example.com"])
        first.confirm_erased([people[3].email])
    return seen


def test_sendgrid_calls_and_answers_match_the_published_shapes():
    from segwise.sync.sandboxes import sendgrid

    _check_provider(sendgrid.create_app, _sendgrid_scenario, SENDGRID, sendgrid_model_problems)


# ------------------------------------------------------------------ Mailchimp
MC_DOCS = "mailchimp.com/developer/marketing/api"
MAILCHIMP = [
    Endpoint("GET", r"/3.0/lists/[^/]+/merge-fields", None, {200: "MergeFields"},
             f"{MC_DOCS}/list-merges/list-merge-fields"),
    Endpoint("POST", r"/3.0/lists/[^/]+/merge-fields", "MergeFieldIn", {200: "MergeField"},
             f"{MC_DOCS}/list-merges/add-merge-field"),
    Endpoint("POST", r"/3.0/lists/[^/]+", "BatchSubscribe", {200: "BatchSubscribeResult"},
             f"{MC_DOCS}/lists/batch-subscribe-or-unsubscribe"),
    Endpoint("GET", r"/3.0/lists/[^/]+/segments", None, {200: "Segments"},
             f"{MC_DOCS}/list-segments/list-segments"),
    Endpoint("POST", r"/3.0/lists/[^/]+/segments", "AddSegment", {200: "Segment"},
             f"{MC_DOCS}/list-segments/add-segment"),
    Endpoint("POST", r"/3.0/lists/[^/]+/segments/\d+", "SegmentMembersIn",
             {200: "SegmentMembersResult"},
             f"{MC_DOCS}/list-segments/batch-add-or-remove-members"),
    Endpoint("POST", r"/3.0/lists/[^/]+/members/[0-9a-f]{32}/actions/delete-permanent", None,
             {204: None, 404: "Problem"},
             f"{MC_DOCS}/list-members/delete-list-member-permanently"),
]


def mailchimp_model_problems(model: str, data) -> list[str]:
    from esp_shapes_mailchimp import SHAPES

    return shape_problems(SHAPES, model, data)


def _mailchimp_scenario(url: str) -> list:
    from segwise.sync.destinations.mailchimp import MailchimpDestination

    people = _people()
    httpx.post(f"{url}/_sandbox/lists/aud/segments", json={"name": "vip customers"})
    first = MailchimpDestination(url, KEY, "aud")
    fresh = MailchimpDestination(url, KEY, "aud")
    with recording(first, fresh) as seen:
        first.prepare("vip customers")
        first.prepare_fields(FIELDS)
        first.upsert_contacts(people)
        first.add_to_list("vip customers", people)
        fresh.prepare("vip customers")
        fresh.remove_from_list("vip customers", people[:2] + [Contact("x", "ghost@example.com")])
        first.unsubscribe(people[4:5])
        first.erase([people[3].email, "nobody@example.com"])
    return seen


def test_mailchimp_calls_and_answers_match_the_published_shapes():
    from segwise.sync.sandboxes import mailchimp

    _check_provider(mailchimp.create_app, _mailchimp_scenario, MAILCHIMP, mailchimp_model_problems)