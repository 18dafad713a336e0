using KextTrust.Cli;

return KextTrustCommand.Run(args, Console.Out, Console.Error);
