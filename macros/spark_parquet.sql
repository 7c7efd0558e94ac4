{% macro spark_import_parquet(tables) -%}
    {#- Copy Parquet folders into Spark tables: ``tables`` maps ``schema.table`` to a folder
        (segwise.spark.copy_to_spark writes them from DuckDB). Each table is replaced. -#}
    {%- for relation, path in tables.items() -%}
        {%- do run_query('create schema if not exists ' ~ relation.split('.')[0]) -%}
        {%- do run_query('drop table if exists ' ~ relation) -%}
        {%- do run_query('create table ' ~ relation ~ ' using parquet as select * from parquet.`' ~ path ~ '`') -%}
    {%- endfor -%}
{%- endmacro %}

{% macro spark_export_parquet(schemas, directory) -%}
    {#- Write every table and view of ``schemas`` as Parquet to ``directory/schema.name``
        (segwise.spark.copy_from_spark reads them into DuckDB). -#}
    {%- for schema in schemas -%}
        {%- set found = run_query('show tables in ' ~ schema) -%}
        {%- for row in found.rows if not row['isTemporary'] -%}
            {%- set relation = schema ~ '.' ~ row['tableName'] -%}
            {%- do run_query("insert overwrite directory '" ~ directory ~ "/" ~ relation ~ "' using parquet select * from " ~ relation) -%}
        {%- endfor -%}
    {%- endfor -%}
{%- endmacro %}
