-- One row per raw CRM contact row: cleaned columns plus the reason it is rejected (or null).
with source as (
    select * from {{ source('crm', 'crm_contacts') }}
),

cleaned as (
    select
        {{ segwise.clean_id('customer_id') }} as customer_id,
        {{ segwise.clean_code('email') }} as email,
        {{ segwise.clean_text('first_name') }} as first_name,
        {{ segwise.clean_text('last_name') }} as last_name,
        upper({{ segwise.clean_text('country') }}) as country,
        {{ segwise.to_utc('signup_at') }} as signup_at,
        coalesce({{ segwise.clean_code('loyalty_tier') }}, 'none') as loyalty_tier,
        coalesce(email_consent, false) as has_email_consent,
        {{ segwise.to_utc('email_consent_at') }} as email_consent_at,
        coalesce(sms_consent, false) as has_sms_consent,
        {{ segwise.to_utc('sms_consent_at') }} as sms_consent_at,
        {{ segwise.to_utc('updated_at') }} as updated_at,
        _loaded_at,
        {{ segwise.raw_payload(['customer_id', 'email', 'country', 'signup_at', 'loyalty_tier', 'email_consent', 'updated_at']) }} as _raw_payload
    from source
),

row_checks as (
    select
        *,
        case
            when customer_id is null then 'missing_customer_id'
            when email is not null and not {{ segwise.is_valid_email('email') }} then 'invalid_email'
            when {{ segwise.is_future('signup_at') }} or {{ segwise.is_implausible_ts('signup_at') }}
                then 'implausible_signup_at'
            when {{ segwise.is_future('email_consent_at') }} or {{ segwise.is_implausible_ts('email_consent_at') }}
                or {{ segwise.is_future('sms_consent_at') }} or {{ segwise.is_implausible_ts('sms_consent_at') }}
                then 'implausible_consent_at'
            when {{ segwise.is_future('updated_at') }} then 'future_timestamp'
            when {{ segwise.is_implausible_ts('updated_at') }} then 'implausible_timestamp'
        end as _row_reason
    from cleaned
),

by_customer as (
    select
        *,
        row_number() over (
            partition by customer_id, _row_reason
            order by updated_at desc nulls last, _loaded_at desc, email
        ) as _customer_rank
    from row_checks
),

by_email as (
    select
        *,
        row_number() over (
            partition by email, (_row_reason is null and _customer_rank = 1)
            order by updated_at desc nulls last, _loaded_at desc, customer_id
        ) as _email_rank
    from by_customer
),

final as (
    select
        customer_id,
        email,
        first_name,
        last_name,
        country,
        signup_at,
        loyalty_tier,
        has_email_consent,
        email_consent_at,
        has_sms_consent,
        sms_consent_at,
        updated_at,
        _loaded_at,
        _raw_payload,
        case
            when _row_reason is not null then _row_reason
            when _customer_rank > 1 then 'duplicate_contact'
            when email is not null and _email_rank > 1 then 'duplicate_email'
        end as _quarantine_reason
    from by_email
)

select * from final
