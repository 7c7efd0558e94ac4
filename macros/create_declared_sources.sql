{% macro create_declared_sources(source_names) -%}
    {#- Tables that segwise itself writes and models read (the scoring step's predictions,
        imported experiments): create any that is missing, empty, from the columns and data
        types its sources YAML declares, so a standalone `dbt build` works before the first
        scoring run or import. Only reads when they exist (safe on a read-only connection). -#}
    {%- if execute -%}
        {%- for node in graph.sources.values() if node.source_name in source_names -%}
            {%- if adapter.get_relation(database=target.database, schema=node.schema, identifier=node.identifier) is none -%}
                {%- set cols = [] -%}
                {%- for col in node.columns.values() -%}{%- do cols.append(col.name ~ ' ' ~ col.data_type) -%}{%- endfor -%}
                {%- call statement('create_schema_' ~ node.schema, auto_begin=True) -%}
                    create schema if not exists {{ node.schema }}
                {%- endcall -%}
                {%- call statement('create_' ~ node.schema ~ '_' ~ node.identifier, auto_begin=True) -%}
                    create table if not exists {{ node.schema }}.{{ node.identifier }} ({{ cols | join(', ') }})
                {%- endcall -%}
                {%- do adapter.commit() -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1 as declared_sources_ready
{%- endmacro %}
