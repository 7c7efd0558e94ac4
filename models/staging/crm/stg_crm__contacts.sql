with base as (
    select * from {{ ref('base_crm__contacts') }}
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
        _loaded_at
    from base
    where _quarantine_reason is null
)

select * from final
