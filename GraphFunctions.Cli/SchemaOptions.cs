namespace GraphFunctions.Cli;

using System.CommandLine;
using System.Globalization;
using Attribution.Requests;

/// <summary>
/// Command-line options made from request-schema fields: the same names (--batch-size for
/// batch_size), defaults, ranges and descriptions as the HTTP API, so the two cannot drift.
/// </summary>
internal sealed class SchemaOptions
{
    private readonly Dictionary<IntegerField, Option<int>> integers = [];
    private readonly Dictionary<NumberField, Option<double>> numbers = [];

    public SchemaOptions(IEnumerable<RequestField> fields)
    {
        foreach (var field in fields)
        {
            switch (field)
            {
                case IntegerField integer:
                    var integerOption = new Option<int>(field.OptionName) { Description = field.Description, DefaultValueFactory = _ => integer.DefaultValue };
                    integerOption.Validators.Add(result =>
                    {
                        int value = result.GetValueOrDefault<int>();
                        if (value < integer.Minimum || value > integer.Maximum)
                            result.AddError($"{field.OptionName} must be between {integer.Minimum} and {integer.Maximum}");
                    });
                    integers[integer] = integerOption;
                    break;
                case NumberField number:
                    var numberOption = new Option<double>(field.OptionName) { Description = field.Description, DefaultValueFactory = _ => number.DefaultValue };
                    numberOption.Validators.Add(result =>
                    {
                        double value = result.GetValueOrDefault<double>();
                        if (!double.IsFinite(value) || value < number.Minimum || value > number.Maximum)
                            result.AddError(string.Create(CultureInfo.InvariantCulture, $"{field.OptionName} must be a finite number between {number.Minimum} and {number.Maximum}"));
                    });
                    numbers[number] = numberOption;
                    break;
                default:
                    throw new NotSupportedException($"{field.Name}: no command-line option for a {field.JsonType} field");
            }
        }
    }

    public IEnumerable<Option> All => integers.Values.Cast<Option>().Concat(numbers.Values);

    public Func<IntegerField, int> Integers(ParseResult parse) => field => parse.GetValue(integers[field]);

    public Func<NumberField, double> Numbers(ParseResult parse) => field => parse.GetValue(numbers[field]);
}
