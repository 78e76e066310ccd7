namespace Attribution.Tests.Foundation;

using TorchSharp;
using static TorchSharp.torch;

/// <summary>Proves the native stack (patched libLibTorchSharp + libtorch) works inside the test host.</summary>
public class TorchNativeStackTests
{
    [Fact]
    public void Autograd_grad_through_a_small_module_matches_the_analytic_gradient()
    {
        using var scope = NewDisposeScope();
        torch.manual_seed(7);
        var linear = nn.Linear(3, 2);
        var x = randn(4, 3, requires_grad: true);

        // f(x) = sum(tanh(Wx + b)); df/dx = (1 - tanh²(Wx + b)) W
        var y = linear.forward(x).tanh();
        var grad = autograd.grad([y.sum()], [x])[0];

        var expected = (1 - y.detach().pow(2)).matmul(linear.weight!.detach());
        Assert.True(grad.allclose(expected, rtol: 1e-5, atol: 1e-6), "autograd.grad disagrees with the analytic gradient");
        Assert.Equal(new long[] { 4, 3 }, grad.shape);
    }
}
