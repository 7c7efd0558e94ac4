"""SendGrid's published shapes of the endpoints segwise calls, written from Twilio's own
OpenAPI definitions (github.com/twilio/sendgrid-oai: spec/json/tsg_mc_contacts_v3.json,
tsg_mc_lists_v3.json, tsg_suppressions_v3.json; the same schemas render the API
reference at twilio.com/docs/sendgrid/api-reference). SendGrid ships no typed SDK models,
so these are the oracle: strict (``extra="forbid"``), required fields as the spec marks
them. A spec quirk is noted where the shape follows the documented example instead."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metadata(_Strict):
    self: str | None = None
    prev: str | None = None
    next: str | None = None
    count: int | None = None


class ContactIn(_Strict):  # PUT /v3/marketing/contacts: contacts[] (UpdateContact)
    email: str = Field(max_length=254)
    first_name: str | None = Field(None, max_length=50)
    last_name: str | None = Field(None, max_length=50)
    address_line_1: str | None = None
    address_line_2: str | None = None
    alternate_emails: list[str] | None = None
    city: str | None = None
    country: str | None = None
    postal_code: str | None = None
    state_province_region: str | None = None
    external_id: str | None = None
    custom_fields: dict[str, str | int | float] | None = None


class UpsertContacts(_Strict):
    list_ids: list[str] | None = None
    contacts: list[ContactIn] = Field(min_length=1, max_length=30_000)


class JobId(_Strict):  # 202 of PUT contacts and of DELETE list contacts
    job_id: str


class DeleteJob(_Strict):
    # DELETE /v3/marketing/contacts: the spec types job_id as an object; its example and
    # every client read a string — either is accepted
    job_id: str | dict


class ImportResults(_Strict):
    requested_count: float | None = None
    created_count: float | None = None
    updated_count: float | None = None
    deleted_count: float | None = None
    errored_count: float | None = None
    errors_url: str | None = None


class ImportStatus(_Strict):  # GET /v3/marketing/contacts/imports/{id}
    id: str | None = None
    status: Literal["pending", "completed", "errored", "failed"] | None = None
    job_type: Literal["upsert", "delete"] | None = None
    results: ImportResults | None = None
    started_at: str | None = None
    finished_at: str | None = None


class SearchEmails(_Strict):  # POST /v3/marketing/contacts/search/emails
    emails: list[str]
    phone_number_id: str | None = None
    external_id: str | None = None
    anonymous_id: str | None = None


class ContactOut(BaseModel):  # a contact as returned; reserved fields, custom_fields
    model_config = ConfigDict(extra="forbid")
    id: str
    list_ids: list[str]
    segment_ids: list[str]
    created_at: str
    updated_at: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    unique_name: str | None = None
    phone_number_id: str | None = None
    external_id: str | None = None
    anonymous_id: str | None = None
    alternate_emails: list[str] | None = None
    address_line_1: str | None = None
    address_line_2: str | None = None
    city: str | None = None
    state_province_region: str | None = None
    country: str | None = None
    postal_code: str | None = None
    phone_number: str | None = None
    whatsapp: str | None = None
    line: str | None = None
    facebook: str | None = None
    custom_fields: dict | None = None
    metadata: Metadata | None = Field(None, alias="_metadata")


class SearchEntry(_Strict):
    contact: ContactOut | None = None
    error: str | None = None


class SearchResult(_Strict):
    result: dict[str, SearchEntry]


class ListOut(_Strict):
    id: str = Field(min_length=36, max_length=36)
    name: str | None = None
    contact_count: int | None = None
    metadata: Metadata | None = Field(None, alias="_metadata")


class Lists(_Strict):  # GET /v3/marketing/lists
    result: list[ListOut]
    metadata: Metadata | None = Field(None, alias="_metadata")


class CreateList(_Strict):  # POST /v3/marketing/lists
    name: str = Field(min_length=1, max_length=100)


class Unsubscribe(_Strict):  # GET /v3/suppression/unsubscribes
    created: int
    email: str


class Bounce(_Strict):  # GET /v3/suppression/bounces
    created: float | None = None
    email: str | None = None
    reason: str | None = None
    status: str | None = None


class SpamReport(_Strict):  # GET /v3/suppression/spam_reports
    created: int
    email: str
    ip: str


class GroupSuppression(_Strict):  # GET /v3/asm/suppressions
    email: str
    group_id: int
    group_name: str
    created_at: int


class GlobalSuppressions(_Strict):  # POST /v3/asm/suppressions/global (body and 201)
    recipient_emails: list[str]


class ErrorItem(_Strict):
    message: str | None = None
    field: str | None = None
    error_id: str | None = None
    parameter: str | None = None
    help: dict | None = None


class Errors(_Strict):
    errors: list[ErrorItem]
    id: str | None = None


class FieldDefinitionIn(_Strict):  # POST /v3/marketing/field_definitions
    name: str = Field(min_length=1, max_length=100)
    field_type: Literal["Text", "Number", "Date"]


class FieldDefinition(_Strict):
    id: str
    name: str = Field(min_length=1, max_length=100)
    field_type: Literal["Text", "Number", "Date"]
    metadata: Metadata | None = Field(None, alias="_metadata")


class ReservedField(_Strict):
    name: str
    field_type: Literal["Text", "Number", "Date"]
    read_only: bool | None = None


class FieldDefinitions(_Strict):  # GET /v3/marketing/field_definitions
    custom_fields: list[FieldDefinition]
    reserved_fields: list[ReservedField]
    metadata: Metadata | None = Field(None, alias="_metadata")


SHAPES = {
    "FieldDefinitionIn": FieldDefinitionIn, "FieldDefinition": FieldDefinition,
    "FieldDefinitions": FieldDefinitions,
    "UpsertContacts": UpsertContacts, "JobId": JobId, "DeleteJob": DeleteJob,
    "ImportStatus": ImportStatus, "SearchEmails": SearchEmails, "SearchResult": SearchResult,
    "Lists": Lists, "ListOut": ListOut, "CreateList": CreateList,
    "Unsubscribes": RootModel[list[Unsubscribe]], "Bounces": RootModel[list[Bounce]],
    "SpamReports": RootModel[list[SpamReport]],
    "GroupSuppressions": RootModel[list[GroupSuppression]],
    "GlobalSuppressions": GlobalSuppressions, "Errors": Errors,
}
