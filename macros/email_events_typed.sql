{#- Raw email events cleaned and typed (ESP spellings mapped), nothing judged yet: the view
    base_email__events_typed (what customer_consent reads) and, filtered to what an
    incremental run judges, base_email__events. ``where``: a clause over the raw rows. -#}
{% macro email_events_typed(where='') -%}
    {%- set raw = segwise.email_event_raw_columns() %}
with source as (
    select * from {{ source('email', 'email_events') }}
    {{- where }}
),

synonyms as (
    select * from {{ ref('email_event_type_synonyms') }}
),

cleaned as (
    select
        {{ segwise.clean_id('email_event_id') }} as email_event_id,
        {{ segwise.clean_id('campaign_id') }} as campaign_id,
        {{ segwise.clean_id('customer_id') }} as customer_id,
        {{ segwise.clean_code('email') }} as email,
        {{ segwise.clean_code('event_type') }} as event_type,
        {{ segwise.to_utc('occurred_at') }} as occurred_at,
        _loaded_at,
        {{ segwise.raw_columns(raw) }}
    from source
),

typed as (
    -- ESPs spell types differently (spamreport, Unsubscribed, hard_bounce): the seed maps
    -- them, so a withdrawal is a withdrawal whatever its spelling
    select
        cleaned.email_event_id,
        cleaned.campaign_id,
        cleaned.customer_id,
        cleaned.email,
        coalesce(synonyms.event_type, cleaned.event_type) as event_type,
        cleaned.occurred_at,
        cleaned._loaded_at,
        {{ segwise.raw_columns(raw, 'cleaned') }}
    from cleaned
    left join synonyms
        on replace(replace(cleaned.event_type, ' ', '_'), '-', '_') = synonyms.raw_event_type
)

select * from typed
{%- endmacro %}

{#- The raw columns a rejected email event's payload shows. -#}
{% macro email_event_raw_columns() -%}
    {{ return(['email_event_id', 'campaign_id', 'customer_id', 'event_type', 'occurred_at']) }}
{%- endmacro %}
