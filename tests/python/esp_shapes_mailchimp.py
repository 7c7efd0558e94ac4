"""Mailchimp Marketing API v3 shapes of the endpoints segwise calls, written from the
published reference (mailchimp.com/developer/marketing/api/: lists "Batch subscribe or
unsubscribe", list-merges "Add merge field" / "List merge fields", list-segments "List
segments" / "Add segment" / "Batch add or remove members", list-members "Get member
info" / "Delete list member permanently", and the "Errors" page's problem-detail body)
and the parameters documented in the official SDK, mailchimp-marketing 3.0.80 (which has
no typed models). Strict (``extra="forbid"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


STATUSES = Literal["subscribed", "unsubscribed", "cleaned", "pending", "transactional",
                   "archived"]


class MemberIn(_Strict):  # batch subscribe: members[]
    email_address: str
    email_type: str | None = None
    status: STATUSES | None = None
    status_if_new: STATUSES | None = None
    merge_fields: dict[str, str | int | float | dict] | None = None
    interests: dict[str, bool] | None = None
    language: str | None = None
    vip: bool | None = None
    ip_signup: str | None = None
    timestamp_signup: str | None = None
    ip_opt: str | None = None
    timestamp_opt: str | None = None
    tags: list[str] | None = None


class BatchSubscribe(_Strict):
    members: list[MemberIn] = Field(max_length=500)
    update_existing: bool | None = None
    sync_tags: bool | None = None


class Member(_Strict):  # a list member as returned
    id: str
    email_address: str
    status: STATUSES
    unique_email_id: str | None = None
    contact_id: str | None = None
    full_name: str | None = None
    web_id: int | None = None
    email_type: str | None = None
    unsubscribe_reason: str | None = None
    consents_to_one_to_one_messaging: bool | None = None
    merge_fields: dict | None = None
    interests: dict | None = None
    stats: dict | None = None
    ip_signup: str | None = None
    timestamp_signup: str | None = None
    ip_opt: str | None = None
    timestamp_opt: str | None = None
    member_rating: int | None = None
    last_changed: str | None = None
    language: str | None = None
    vip: bool | None = None
    email_client: str | None = None
    location: dict | None = None
    marketing_permissions: list | None = None
    last_note: dict | None = None
    source: str | None = None
    tags_count: int | None = None
    tags: list | None = None
    list_id: str | None = None
    links: list | None = Field(None, alias="_links")


class BatchError(_Strict):
    email_address: str
    error: str
    error_code: str | None = None
    field: str | None = None
    field_message: str | None = None


class BatchSubscribeResult(_Strict):
    new_members: list[Member]
    updated_members: list[Member]
    errors: list[BatchError]
    total_created: int
    total_updated: int
    error_count: int
    links: list | None = Field(None, alias="_links")


class Segment(_Strict):
    id: int
    name: str
    member_count: int | None = None
    type: Literal["saved", "static", "fuzzy"] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    options: dict | None = None
    list_id: str | None = None
    links: list | None = Field(None, alias="_links")


class Segments(_Strict):
    segments: list[Segment]
    list_id: str | None = None
    total_items: int
    links: list | None = Field(None, alias="_links")


class AddSegment(_Strict):
    name: str
    static_segment: list[str] | None = None
    options: dict | None = None


class SegmentMembersIn(_Strict):
    members_to_add: list[str] | None = Field(None, max_length=500)
    members_to_remove: list[str] | None = Field(None, max_length=500)


class SegmentError(_Strict):
    email_addresses: list[str]
    error: str


class SegmentMembersResult(_Strict):
    members_added: list[Member]
    members_removed: list[Member]
    errors: list[SegmentError]
    total_added: int
    total_removed: int
    error_count: int
    links: list | None = Field(None, alias="_links")


class FieldError(_Strict):
    field: str | None = None
    message: str | None = None


class Problem(_Strict):  # application/problem+json
    type: str | None = None
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[FieldError] | None = None


class MergeFieldIn(_Strict):  # POST /lists/{list_id}/merge-fields
    name: str
    type: Literal["text", "number", "address", "phone", "date", "url", "imageurl", "radio",
                  "dropdown", "birthday", "zip"]
    tag: str | None = Field(None, pattern=r"^[A-Za-z0-9_]{1,10}$")
    required: bool | None = None
    default_value: str | None = None
    public: bool | None = None
    display_order: int | None = None
    options: dict | None = None
    help_text: str | None = None


class MergeField(_Strict):
    merge_id: int
    tag: str
    name: str
    type: str
    required: bool | None = None
    default_value: str | None = None
    public: bool | None = None
    display_order: int | None = None
    options: dict | None = None
    help_text: str | None = None
    list_id: str | None = None
    links: list | None = Field(None, alias="_links")


class MergeFields(_Strict):
    merge_fields: list[MergeField]
    list_id: str | None = None
    total_items: int
    links: list | None = Field(None, alias="_links")


SHAPES = {"MergeFieldIn": MergeFieldIn, "MergeField": MergeField, "MergeFields": MergeFields,
          "BatchSubscribe": BatchSubscribe, "BatchSubscribeResult": BatchSubscribeResult,
          "Segments": Segments, "Segment": Segment, "AddSegment": AddSegment,
          "SegmentMembersIn": SegmentMembersIn, "SegmentMembersResult": SegmentMembersResult,
          "Member": Member, "Problem": Problem}
