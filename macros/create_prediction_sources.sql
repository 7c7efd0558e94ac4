{% macro create_prediction_sources() -%}
    {#- The scoring step's tables (source segwise_predictions) are read by customer_profile:
        create any that is missing, empty, from the columns and data types its sources YAML
        declares, so a standalone `dbt build` works before the first scoring run. Only
        reads when they exist (safe on a read-only connection). -#}
    {%- if execute -%}
        {%- for node in graph.sources.values() if node.source_name == 'segwise_predictions' -%}
            {%- if adapter.get_relation(database=target.database, schema=node.schema, identifier=node.identifier) is none -%}
                {%- set cols = [] -%}
                {%- for col in node.columns.values() -%}{%- do cols.append(col.name ~ ' ' ~ col.data_type) -%}{%- endfor -%}
                {%- call statement('create_predictions_schema', auto_begin=True) -%}
                    create schema if not exists {{ node.schema }}
                {%- endcall -%}
                {%- call statement('create_prediction_' ~ node.identifier, auto_begin=True) -%}
                    create table if not exists {{ node.schema }}.{{ node.identifier }} ({{ cols | join(', ') }})
                {%- endcall -%}
                {%- do adapter.commit() -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1 as prediction_sources_ready
{%- endmacro %}
