{% macro create_ops_sources() -%}
    {#- The two tables segwise itself writes and the consent model reads (ESP-reported
        suppressions, erasure requests) must exist before the first build, on every
        engine: create them when missing (same columns as segwise.warehouse.OPS_DDL). Only
        reads when they exist, so it also runs on a read-only connection. -#}
    {%- if execute -%}
        {%- set tables = {
            'destination_suppressions': [
                ['destination', dbt.type_string()], ['email', dbt.type_string()],
                ['remote_status', dbt.type_string()], ['discovered_at', dbt.type_timestamp()],
                ['run_id', dbt.type_string()]],
            'erasure_requests': [
                ['request_id', dbt.type_string()], ['email_sha256', dbt.type_string()],
                ['requested_at', dbt.type_timestamp()], ['reason', dbt.type_string()]],
        } -%}
        {%- for name, columns in tables.items() -%}
            {%- if adapter.get_relation(database=target.database, schema='ops', identifier=name) is none -%}
                {%- set cols = [] -%}
                {%- for c in columns -%}{%- do cols.append(c[0] ~ ' ' ~ c[1]) -%}{%- endfor -%}
                {#- in a transaction of its own, committed: hooks run before any model -#}
                {%- call statement('create_ops_schema', auto_begin=True) -%}
                    create schema if not exists ops
                {%- endcall -%}
                {%- call statement('create_ops_' ~ name, auto_begin=True) -%}
                    create table if not exists ops.{{ name }} ({{ cols | join(', ') }})
                {%- endcall -%}
                {%- do adapter.commit() -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1 as ops_sources_ready
{%- endmacro %}
