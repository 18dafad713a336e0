using KextTrust.Cli;

OpenSslTrustStore.KeepOut();
return KextTrustCommand.Run(args, Console.Out, Console.Error);
