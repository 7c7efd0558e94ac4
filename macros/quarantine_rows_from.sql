{% macro quarantine_rows_from(base_model, source_table, key_column, stage='staging') -%}
    select
        '{{ source_table }}' as source_table,
        cast({{ key_column }} as {{ dbt.type_string() }}) as record_key,
        _quarantine_reason as reason,
        _raw_payload as payload,
        _loaded_at as loaded_at,
        '{{ stage }}' as detected_in
    from {{ ref(base_model) }}
    where _quarantine_reason is not null
{%- endmacro %}
