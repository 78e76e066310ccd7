namespace GraphFunctions.Orchestration;

using System.Net.Sockets;
using Microsoft.AspNetCore.Http;
using Microsoft.DurableTask;

/// <summary>
/// Why a job failed, in words and as the status its result answers with. The orchestrator keeps it
/// with the job (jobs/{id}/failure.json) because not every provider keeps Durable's own failure
/// details (the Azure Storage provider behind the local host's sidecar returns none).
/// </summary>
public sealed record JobFailure(string Kind, string Message)
{
    /// <summary>The graph was made but not delivered (502, as the Neuronpedia graph server answers).</summary>
    public const string Delivery = "delivery";

    /// <summary>The workspace's disk is full (507).</summary>
    public const string Disk = "disk";

    /// <summary>Storage could not be reached (503: retry later).</summary>
    public const string Storage = "storage";

    public const string Other = "other";

    public int StatusCode => Kind switch
    {
        Delivery => StatusCodes.Status502BadGateway,
        Disk => StatusCodes.Status507InsufficientStorage,
        Storage => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };

    /// <summary>The failure an exception stands for: thrown here, or an activity's as Durable reports it.</summary>
    public static JobFailure Of(Exception error) => error switch
    {
        GraphDeliveryFailedException delivery => new(Delivery, delivery.Message),
        TaskFailedException failed => Of(failed.FailureDetails, failed.TaskName),
        _ => Classify(Innermost(error).GetType().FullName ?? "", Innermost(error).Message),
    };

    /// <summary>A failure as Durable reports it: an activity's (named by <paramref name="task"/>), or a whole orchestration's.</summary>
    public static JobFailure Of(TaskFailureDetails details, string? task = null)
    {
        ArgumentNullException.ThrowIfNull(details);
        string message = task is null ? details.ErrorMessage : $"{details.ErrorMessage} (in {task})";
        return details.IsCausedBy<GraphDeliveryFailedException>() ? new(Delivery, message) : Classify(details.ErrorType, message);
    }

    /// <summary>
    /// The storage and disk faults a request or a job can meet, by exception type: a full disk is an
    /// IOException saying so (ENOSPC), an unreachable account a request or socket failure.
    /// </summary>
    public static JobFailure Classify(string errorType, string message)
    {
        if (errorType == typeof(IOException).FullName && message.Contains("No space left on device", StringComparison.OrdinalIgnoreCase))
            return new(Disk, $"the workspace disk is full: {message}");
        // The local host reaches Azure Storage through its Durable sidecar, whose failures arrive as gRPC errors.
        if (errorType is "Azure.RequestFailedException" or "Grpc.Core.RpcException" || errorType == typeof(HttpRequestException).FullName || errorType == typeof(SocketException).FullName)
            return new(Storage, $"storage could not be reached: {message}");
        return new(Other, message);
    }

    private static Exception Innermost(Exception error) => error is AggregateException { InnerException: { } inner } ? Innermost(inner) : error;
}
