-- One row per customer: every valid CRM contact plus every customer seen on a valid order
-- (real data sets have orders without a CRM record), with consent and lifecycle stage.
with contacts as (
    select * from {{ ref('stg_crm__contacts') }}
),

orders as (
    select * from {{ ref('fct_orders') }}
),

consent as (
    select * from {{ ref('customer_consent') }}
),

order_customers as (
    select
        customer_id,
        min(ordered_at) as first_order_at,
        max(ordered_at) as last_order_at,
        count(*) as orders_count
    from orders
    group by customer_id
),

all_customers as (
    select customer_id from contacts
    union
    select customer_id from order_customers
),

final as (
    select
        all_customers.customer_id,
        contacts.email,
        contacts.first_name,
        contacts.last_name,
        contacts.country,
        contacts.signup_at,
        coalesce(contacts.loyalty_tier, 'none') as loyalty_tier,
        -- decided in customer_consent from every signal (withdrawals win)
        coalesce(consent.has_email_consent, false) as has_email_consent,
        contacts.email_consent_at,
        coalesce(contacts.has_sms_consent, false) as has_sms_consent,
        contacts.sms_consent_at,
        contacts.customer_id is not null as is_in_crm,
        order_customers.first_order_at,
        order_customers.last_order_at,
        coalesce(order_customers.orders_count, 0) as orders_count,
        case
            when order_customers.last_order_at is null then 'prospect'
            when order_customers.first_order_at >= {{ segwise.window_start('day', var('lifecycle_new_days')) }} then 'new'
            when order_customers.last_order_at >= {{ segwise.window_start('day', var('lifecycle_active_days')) }} then 'active'
            when order_customers.last_order_at >= {{ segwise.window_start('day', var('lifecycle_lapsing_days')) }} then 'lapsing'
            else 'churned'
        end as lifecycle_stage
    from all_customers
    left join contacts
        on all_customers.customer_id = contacts.customer_id
    left join order_customers
        on all_customers.customer_id = order_customers.customer_id
    left join consent
        on all_customers.customer_id = consent.customer_id
)

select * from final
