-- One row per raw row that staging rejected, with the reason. Nothing is dropped silently:
-- every raw row is either in a stg_ model or here (detected_in = 'staging'). Rows that
-- pass staging but fail a cross-row check later (detected_in = 'intermediate', e.g. an
-- order without any valid line) are listed here too and kept out of the marts.
with rejected as (
    {{ segwise.quarantine_rows_from('base_crm__contacts', 'crm_contacts', 'customer_id') }}
    union all
    {{ segwise.quarantine_rows_from('base_crm__contact_attributes', 'crm_contact_attributes', dbt.concat(['customer_id', "':'", 'attribute'])) }}
    union all
    {{ segwise.quarantine_rows_from('base_web__events', 'web_events', 'event_id') }}
    union all
    {{ segwise.quarantine_rows_from('base_shop__orders', 'orders', 'order_id') }}
    union all
    {{ segwise.quarantine_rows_from('base_shop__order_items', 'order_items', 'order_item_id') }}
    union all
    {{ segwise.quarantine_rows_from('int_orders_validated', 'orders', 'order_id', stage='intermediate') }}
    union all
    {{ segwise.quarantine_rows_from('base_shop__products', 'products', 'product_id') }}
    union all
    {{ segwise.quarantine_rows_from('base_email__campaigns', 'email_campaigns', 'campaign_id') }}
    union all
    {{ segwise.quarantine_rows_from('base_email__events', 'email_events', 'email_event_id') }}
    union all
    {{ segwise.quarantine_rows_from('base_experiments__units', 'experiment_units', dbt.concat(['experiment_id', "':'", 'unit_id'])) }}
    union all
    {{ segwise.quarantine_rows_from('base_experiments__unit_attributes', 'experiment_unit_attributes', dbt.concat(['experiment_id', "':'", 'unit_id', "':'", 'attribute'])) }}
),

numbered as (
    select
        *,
        row_number() over (
            partition by source_table, record_key
            order by reason, payload, loaded_at
        ) as _n
    from rejected
),

final as (
    select
        {{ dbt.concat(['source_table', "':'", "coalesce(record_key, 'NULL')", "':'", 'cast(_n as ' ~ dbt.type_string() ~ ')']) }} as quarantine_id,
        source_table,
        record_key,
        reason,
        payload,
        loaded_at,
        detected_in,
        {{ segwise.run_started_ts() }} as quarantined_at
    from numbered
)

select * from final
