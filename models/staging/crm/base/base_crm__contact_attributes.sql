-- One row per raw custom-attribute row: cleaned, typed by its declaration (var
-- custom_attributes), with the reason it is rejected (or null). A value is only cast after
-- the pattern check passed, so one bad value never fails a build.
{%- set declared = segwise.custom_attributes() %}
{%- set yes = segwise.boolean_spellings('true') %}
{%- set no = segwise.boolean_spellings('false') %}

with source as (
    select * from {{ source('crm', 'crm_contact_attributes') }}
),

cleaned as (
    select
        {{ segwise.clean_id('customer_id') }} as customer_id,
        {{ segwise.clean_code('attribute') }} as attribute,
        {{ segwise.clean_text('value') }} as value_text,
        {{ segwise.to_utc('updated_at') }} as updated_at,
        _loaded_at,
        {{ segwise.raw_payload(['customer_id', 'attribute', 'value', 'updated_at']) }} as _raw_payload
    from source
),

typed as (
    select
        *,
        case
            when attribute is null then null
            {%- for name, spec in declared.items() %}
            when attribute = '{{ name }}' then '{{ spec.type }}'
            {%- endfor %}
        end as attribute_type
    from cleaned
),

row_checks as (
    select
        *,
        case
            when customer_id is null then 'missing_customer_id'
            when attribute is null then 'missing_attribute'
            when attribute_type is null then 'undeclared_attribute'
            when attribute_type = 'number' and value_text is not null
                and not (length(value_text) <= 30 and {{ segwise.full_match('value_text', segwise.number_pattern()) }})
                then 'invalid_number'
            when attribute_type = 'boolean' and value_text is not null
                and lower(value_text) not in ('{{ (yes + no) | join("', '") }}')
                then 'invalid_boolean'
            when {{ segwise.is_future('updated_at') }} then 'future_timestamp'
            when {{ segwise.is_implausible_ts('updated_at') }} then 'implausible_timestamp'
        end as _row_reason
    from typed
),

ranked as (
    select
        *,
        row_number() over (
            partition by customer_id, attribute, _row_reason
            order by updated_at desc nulls last, _loaded_at desc, value_text
        ) as _rank
    from row_checks
),

final as (
    select
        customer_id,
        attribute,
        attribute_type,
        value_text,
        case
            when _row_reason is null and attribute_type = 'number'
                then cast(value_text as {{ segwise.type_double() }})
        end as value_number,
        case
            when _row_reason is null and attribute_type = 'boolean'
                then lower(value_text) in ('{{ yes | join("', '") }}')
        end as value_boolean,
        updated_at,
        _loaded_at,
        _raw_payload,
        case
            when _row_reason is not null then _row_reason
            when _rank > 1 then 'duplicate_attribute'
        end as _quarantine_reason
    from ranked
)

select * from final
