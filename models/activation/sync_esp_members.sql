-- The activation feed every destination reads (ESPs, files, ad audiences): who each list
-- should hold, and why anybody is left out. Public API (contract enforced): change columns
-- only with a version bump. Holdout members are not here at all; members of the
-- universal control group, and members whom customer_consent excludes (no email, no
-- consent, unsubscribed, complained, bounced, erased), are here with is_sendable = false
-- and their exclusion_reason, so BI can show who is kept out of a list and why. A view: consent is read when a sync reads it.

with memberships as (
    select * from {{ ref('segment_memberships') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

consent as (
    select * from {{ ref('customer_consent') }}
),

members as (
    select
        memberships.membership_id,
        memberships.segment_name,
        memberships.customer_id,
        memberships.variant,
        consent.email,
        customers.first_name,
        customers.last_name,
        coalesce(consent.has_email_consent, false) as has_email_consent,
        -- a customer without a CRM contact has no address; consent's reasons come first,
        -- then the universal control group (var universal_control_pct), kept out of all lists
        case
            when consent.customer_id is null then 'no_email'
            when consent.exclusion_reason is not null then consent.exclusion_reason
            when {{ segwise.is_universal_control('memberships.customer_id') }} then 'universal_control'
        end as exclusion_reason
    from memberships
    inner join customers on memberships.customer_id = customers.customer_id
    left join consent on memberships.customer_id = consent.customer_id
    where not memberships.is_holdout
),

final as (
    -- explicit casts: the contract's types are checked by the database on every engine
    select
        cast(membership_id as {{ dbt.type_string() }}) as membership_id,
        cast(segment_name as {{ dbt.type_string() }}) as segment_name,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(variant as {{ dbt.type_string() }}) as variant,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(first_name as {{ dbt.type_string() }}) as first_name,
        cast(last_name as {{ dbt.type_string() }}) as last_name,
        cast(has_email_consent as {{ dbt.type_boolean() }}) as has_email_consent,
        cast(exclusion_reason as {{ dbt.type_string() }}) as exclusion_reason,
        cast(exclusion_reason is null as {{ dbt.type_boolean() }}) as is_sendable
    from members
)

select * from final
