-- The reverse-ETL feed every ESP sync reads: who each destination list should hold, and
-- why anybody is left out. Public API of the sync (contract enforced): change columns
-- only with a version bump. Holdout members are not here at all; members without an
-- email, without email consent or with an unsubscribe / bounce / complaint on record
-- are here with is_sendable = false and their exclusion_reason, so BI can show who is
-- kept out of a list and why. (Addresses an ESP reported as unsubscribed are added by
-- the sync from ops.destination_suppressions, which segwise writes while syncing.)

with memberships as (
    select * from {{ ref('segment_memberships') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

engagement as (
    select * from {{ ref('customer_engagement') }}
),

members as (
    select
        memberships.membership_id,
        memberships.segment_name,
        memberships.customer_id,
        customers.email,
        customers.first_name,
        customers.last_name,
        coalesce(customers.has_email_consent, false) as has_email_consent,
        case
            when customers.email is null then 'no_email'
            when not coalesce(customers.has_email_consent, false) then 'no_consent'
            when engagement.last_complaint_at is not null then 'complained'
            when engagement.last_unsubscribe_at is not null then 'unsubscribed'
            when engagement.last_bounce_at is not null then 'bounced'
        end as exclusion_reason
    from memberships
    inner join customers on memberships.customer_id = customers.customer_id
    left join engagement on memberships.customer_id = engagement.customer_id
    where not memberships.is_holdout
),

final as (
    -- explicit casts: the contract's types are checked by the database on every engine
    select
        cast(membership_id as {{ dbt.type_string() }}) as membership_id,
        cast(segment_name as {{ dbt.type_string() }}) as segment_name,
        cast(customer_id as {{ dbt.type_string() }}) as customer_id,
        cast(email as {{ dbt.type_string() }}) as email,
        cast(first_name as {{ dbt.type_string() }}) as first_name,
        cast(last_name as {{ dbt.type_string() }}) as last_name,
        cast(has_email_consent as {{ dbt.type_boolean() }}) as has_email_consent,
        cast(exclusion_reason as {{ dbt.type_string() }}) as exclusion_reason,
        cast(exclusion_reason is null as {{ dbt.type_boolean() }}) as is_sendable
    from members
)

select * from final
